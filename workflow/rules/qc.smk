# Quality control: per-batch checks and montages, then the cohort merge (robust outliers) and
# the summary figure.


rule qc_batch:
    input:
        segment="results/segment/{batch}.parquet",
        manifest=batch_manifest,
        phenotypes="results/phenotypes/batches/{batch}.parquet",
        views=view_segment_tables,
    output:
        table="results/qc/batches/{batch}.parquet",
        montages=directory("results/qc/montages/{batch}"),
    log:
        "results/logs/qc_batch/{batch}.log",
    conda:
        "../../envs/cardiopheno.yaml"
    params:
        thresholds=config["qc"],
    script:
        "../../scripts/qc_batch.py"


rule qc_merge:
    input:
        qc=expand("results/qc/batches/{batch}.parquet", batch=BATCHES),
        phenotypes="results/phenotypes.parquet",
    output:
        table="results/qc.parquet",
        summary=report(
            "results/figures/qc_summary.png",
            caption="../report/qc_summary.rst",
            category="Quality control",
        ),
    log:
        "results/logs/qc_merge.log",
    conda:
        "../../envs/cardiopheno.yaml"
    params:
        thresholds=config["qc"],
    script:
        "../../scripts/qc_merge.py"


rule qc_outlier_montages:
    input:
        qc="results/qc.parquet",
        segment=expand("results/segment/{batch}.parquet", batch=BATCHES),
        manifests=expand(f"{BATCH_DIR}/{{batch}}.csv", batch=BATCHES),
    output:
        directory("results/qc/montages/outliers"),
    log:
        "results/logs/qc_outlier_montages.log",
    conda:
        "../../envs/cardiopheno.yaml"
    script:
        "../../scripts/qc_outlier_montages.py"
