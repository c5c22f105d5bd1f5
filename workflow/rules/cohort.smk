# The demo cohort: a synthetic cohort with full ground truth, written in the layout a user brings.


rule synth_cohort:
    output:
        manifest=f"{COHORT_DIR}/manifest.csv",
        covariates=f"{COHORT_DIR}/covariates.csv",
        diagnoses=f"{COHORT_DIR}/diagnoses.csv",
        deaths=f"{COHORT_DIR}/deaths.csv",
        subjects=directory(f"{COHORT_DIR}/subjects"),
        truth=directory(f"{COHORT_DIR}/truth"),
    log:
        "results/logs/synth_cohort.log",
    conda:
        "../../envs/cardiopheno.yaml"
    threads: 2
    params:
        n_subjects=config["synthetic"]["n_subjects"],
        seed=config["synthetic"]["seed"],
        fault_fraction=config["synthetic"]["fault_fraction"],
    script:
        "../../scripts/synth_cohort.py"


rule synth_montage:
    input:
        manifest=f"{COHORT_DIR}/manifest.csv",
        subjects=f"{COHORT_DIR}/subjects",
        truth=f"{COHORT_DIR}/truth",
    output:
        report(
            "results/figures/synth_montage.png",
            caption="../report/synth_montage.rst",
            category="Cohort",
        ),
    log:
        "results/logs/synth_montage.log",
    conda:
        "../../envs/cardiopheno.yaml"
    script:
        "../../scripts/synth_montage.py"


# synthetic.images: false (make demo-stats): the population model's tables only, no images.
rule synth_tables:
    output:
        covariates=f"{POPULATION_DIR}/covariates.csv",
        diagnoses=f"{POPULATION_DIR}/diagnoses.csv",
        deaths=f"{POPULATION_DIR}/deaths.csv",
        phenotypes=f"{POPULATION_DIR}/phenotypes.parquet",
        qc=f"{POPULATION_DIR}/qc.parquet",
        effects=f"{POPULATION_DIR}/effects.parquet",
    log:
        "results/logs/synth_tables.log",
    conda:
        "../../envs/cardiopheno.yaml"
    params:
        n_subjects=config["synthetic"]["n_subjects"],
        seed=config["synthetic"]["seed"],
    script:
        "../../scripts/synth_tables.py"
