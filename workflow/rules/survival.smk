# Incident outcomes after imaging and Cox models of each outcome on each IDP.


rule survival:
    input:
        phenotypes=analysis_tables()["phenotypes"],
        qc=analysis_tables()["qc"],
        covariates=cohort_tables()["covariates"],
        diagnoses=cohort_tables()["diagnoses"],
        deaths=cohort_tables()["deaths"],
    output:
        cox="results/survival/cox.parquet",
        outcomes="results/survival/outcomes.parquet",
    log:
        "results/logs/survival/survival.log",
    conda:
        "../../envs/cardiopheno.yaml"
    params:
        cfg=config["survival"],
    script:
        "../../scripts/survival.py"
