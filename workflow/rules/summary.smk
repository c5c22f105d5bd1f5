# What happened to every subject: given, segmented, QC-passed, analysed, with reasons.


rule run_summary:
    input:
        manifest=manifest_path(),
        segment=expand("results/segment/{batch}.parquet", batch=BATCHES),
        qc="results/qc.parquet",
        covariates=cohort_tables()["covariates"],
        diagnoses=cohort_tables()["diagnoses"],
        deaths=cohort_tables()["deaths"],
    output:
        subjects="results/run_summary/subjects.parquet",
        counts=report(
            "results/run_summary/counts.csv",
            caption="../report/run_summary.rst",
            category="Run summary",
        ),
        records=report(
            "results/run_summary/records.csv",
            caption="../report/run_summary_records.rst",
            category="Run summary",
        ),
    log:
        "results/logs/run_summary.log",
    conda:
        "../../envs/cardiopheno.yaml"
    script:
        "../../scripts/run_summary.py"
