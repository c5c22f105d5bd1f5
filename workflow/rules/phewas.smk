# Phenome-wide association study: every IDP against every phecode (vectorised logistic engine).


rule phewas:
    input:
        phenotypes=analysis_tables()["phenotypes"],
        qc=analysis_tables()["qc"],
        covariates=cohort_tables()["covariates"],
        diagnoses=cohort_tables()["diagnoses"],
    output:
        phewas="results/phewas/phewas.parquet",
        top_hits="results/phewas/top_hits.parquet",
    log:
        "results/logs/phewas/phewas.log",
    conda:
        "../../envs/cardiopheno.yaml"
    threads: 2
    params:
        cfg=config["phewas"],
    script:
        "../../scripts/phewas.py"
