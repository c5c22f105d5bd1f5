# Imaging phenotypes: one table per batch from the segment stage's status table, merged.


rule phenotypes_batch:
    input:
        segment="results/segment/{batch}.parquet",
        covariates=batch_covariates,
        views=view_segment_tables,
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
