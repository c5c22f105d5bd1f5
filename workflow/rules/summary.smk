# What happened to every subject: given, segmented, QC-passed, analysed, with reasons.


rule run_summary:
    input:
        manifest=manifest_path(),
        segment=expand("results/segment/{batch}.parquet", batch=BATCHES),
        qc="results/qc.parquet",
        covariates=cohort_tables()["covariates"],
    output:
        subjects="results/run_summary/subjects.parquet",
        counts=report(
            "results/run_summary/counts.csv",
            caption="../report/run_summary.rst",
            category="Run summary",
        ),
    log:
        "results/logs/run_summary.log",
    conda:
        "../../envs/cardiopheno.yaml"
    script:
        "../../scripts/run_summary.py"
