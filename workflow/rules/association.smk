# Age and sex associations of every IDP (OLS, robust SEs) and sex-specific reference ranges.


rule association:
    input:
        phenotypes=analysis_tables()["phenotypes"],
        qc=analysis_tables()["qc"],
        covariates=cohort_tables()["covariates"],
    output:
        associations="results/association/associations.parquet",
        reference_ranges="results/association/reference_ranges.parquet",
    log:
        "results/logs/association/association.log",
    conda:
        "../../envs/cardiopheno.yaml"
    params:
        cfg=config["association"],
    script:
        "../../scripts/association.py"
