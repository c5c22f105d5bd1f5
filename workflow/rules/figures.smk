# Statistics figures and report tables, redrawn from the cached result tables only:
# `snakemake figures` never reruns segmentation or phenotyping (inputs are the cached tables).


rule figures_association:
    input:
        phenotypes=analysis_tables()["phenotypes"],
        qc=analysis_tables()["qc"],
        covariates=cohort_tables()["covariates"],
        associations="results/association/associations.parquet",
        reference_ranges="results/association/reference_ranges.parquet",
    output:
        by_age=report(
            expand(
                "results/figures/association/{idp}_by_age.{ext}",
                idp=config["figures"]["idps"],
                ext=config["figures"]["formats"],
            ),
            caption="../report/association_by_age.rst",
            category="Age and sex",
        ),
        heatmap=report(
            expand(
                "results/figures/association/effects_heatmap.{ext}",
                ext=config["figures"]["formats"],
            ),
            caption="../report/association_heatmap.rst",
            category="Age and sex",
        ),
    log:
        "results/logs/figures_association/figures_association.log",
    conda:
        "../../envs/cardiopheno.yaml"
    params:
        cfg=config["figures"],
    script:
        "../../scripts/figures_association.py"


rule figures_phewas:
    input:
        phewas="results/phewas/phewas.parquet",
    output:
        manhattan=report(
            expand(
                "results/figures/phewas/manhattan.{ext}",
                ext=config["figures"]["formats"],
            ),
            caption="../report/phewas_manhattan.rst",
            category="PheWAS",
        ),
    log:
        "results/logs/figures_phewas/figures_phewas.log",
    conda:
        "../../envs/cardiopheno.yaml"
    params:
        cfg=config["figures"],
    script:
        "../../scripts/figures_phewas.py"


rule figures_survival:
    input:
        phenotypes=analysis_tables()["phenotypes"],
        qc=analysis_tables()["qc"],
        covariates=cohort_tables()["covariates"],
        cox="results/survival/cox.parquet",
        outcomes="results/survival/outcomes.parquet",
    output:
        km=report(
            expand(
                "results/figures/survival/km_{outcome}__{idp}.{ext}",
                outcome=config["figures"]["outcomes"],
                idp=config["figures"]["km_idps"],
                ext=config["figures"]["formats"],
            ),
            caption="../report/survival_km.rst",
            category="Survival",
        ),
        forest=report(
            expand(
                "results/figures/survival/cox_forest.{ext}",
                ext=config["figures"]["formats"],
            ),
            caption="../report/survival_forest.rst",
            category="Survival",
        ),
    log:
        "results/logs/figures_survival/figures_survival.log",
    conda:
        "../../envs/cardiopheno.yaml"
    params:
        cfg=config["figures"],
    script:
        "../../scripts/figures_survival.py"


rule figures_tables:
    input:
        associations="results/association/associations.parquet",
        reference_ranges="results/association/reference_ranges.parquet",
        top_hits="results/phewas/top_hits.parquet",
        cox="results/survival/cox.parquet",
    output:
        associations=report(
            "results/figures/tables/associations.csv",
            caption="../report/table_associations.rst",
            category="Tables",
        ),
        reference_ranges=report(
            "results/figures/tables/reference_ranges.csv",
            caption="../report/table_reference_ranges.rst",
            category="Tables",
        ),
        top_hits=report(
            "results/figures/tables/phewas_top_hits.csv",
            caption="../report/table_top_hits.rst",
            category="Tables",
        ),
        cox=report(
            "results/figures/tables/cox.csv",
            caption="../report/table_cox.rst",
            category="Tables",
        ),
    log:
        "results/logs/figures_tables/figures_tables.log",
    conda:
        "../../envs/cardiopheno.yaml"
    script:
        "../../scripts/figures_tables.py"


rule figures_atria:
    input:
        curves=expand("results/phenotypes/curves/{batch}.parquet", batch=BATCHES),
        qc="results/qc.parquet",
        covariates=cohort_tables()["covariates"],
    output:
        curves=report(
            expand(
                "results/figures/atria/atrial_curves.{ext}",
                ext=config["figures"]["formats"],
            ),
            caption="../report/atrial_curves.rst",
            category="Atria",
        ),
    log:
        "results/logs/figures_atria/figures_atria.log",
    conda:
        "../../envs/cardiopheno.yaml"
    script:
        "../../scripts/figures_atria.py"


rule figures_strain:
    input:
        phenotypes="results/phenotypes.parquet",
        qc="results/qc.parquet",
        covariates=cohort_tables()["covariates"],
        curves=expand("results/phenotypes/curves/{batch}.parquet", batch=BATCHES),
    output:
        figures=report(
            expand(
                "results/figures/strain/{name}.{ext}",
                name=["strain_bullseye", "strain_curves"],
                ext=config["figures"]["formats"],
            ),
            caption="../report/strain.rst",
            category="Strain",
        ),
    log:
        "results/logs/figures_strain/figures_strain.log",
    conda:
        "../../envs/cardiopheno.yaml"
    params:
        cfg=config["figures"],
    script:
        "../../scripts/figures_strain.py"


rule figures:
    input:
        rules.figures_association.output,
        rules.figures_phewas.output,
        rules.figures_survival.output,
        rules.figures_tables.output,
        view_figures(),
