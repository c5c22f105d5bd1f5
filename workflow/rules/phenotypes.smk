# Imaging phenotypes: one table per batch from the segment stage's status table, merged.
# Strain (motion tracking) runs inside phenotypes_batch as a family: it needs the cine and the
# segmentation the batch already reads, its IDPs join phenotypes.parquet like any other, and its
# per-frame global curves join the other families' in results/phenotypes/curves/ (measured cost
# in BENCHMARKS.md "Strain").


rule phenotypes_batch:
    input:
        segment="results/segment/{batch}.parquet",
        covariates=batch_covariates,
        views=view_segment_tables,
        manifest=batch_manifest,
    output:
        table="results/phenotypes/batches/{batch}.parquet",
        curves="results/phenotypes/curves/{batch}.parquet",
    log:
        "results/logs/phenotypes_batch/{batch}.log",
    conda:
        "../../envs/cardiopheno.yaml"
    params:
        families=config["phenotypes"]["families"],
        ed_frame=config["phenotypes"]["ed_frame"],
        # every family's own settings section (phenotypes.<family>: an object in the schema)
        options={k: v for k, v in config["phenotypes"].items() if isinstance(v, dict)},
    script:
        "../../scripts/phenotypes_batch.py"


rule phenotypes_merge:
    input:
        expand("results/phenotypes/batches/{batch}.parquet", batch=BATCHES),
    output:
        "results/phenotypes.parquet",
    log:
        "results/logs/phenotypes_merge.log",
    conda:
        "../../envs/cardiopheno.yaml"
    script:
        "../../scripts/phenotypes_merge.py"
