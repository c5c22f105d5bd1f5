# Helpers shared by all rule files (config validation, the cohort, batches, final outputs).
from pathlib import Path

from snakemake.logging import logger
from snakemake.utils import validate

from cardiopheno.batching import (
    batch_number,
    materialise,
    planned_batches,
    read_index,
)
from cardiopheno.cohort_check import check_checkpoints, check_cohort, write_door_summary
from cardiopheno.config_checks import check_config
from cardiopheno.io.atomic import remove_stale
from cardiopheno.io.covariates import covariate_columns
from cardiopheno.io.tables import read_any
from cardiopheno.synth.cohort import synthetic_views

# The whole config against config.schema.yaml, whose sections $ref one schema file each (errors
# then name the full key, e.g. instance['synthetic']['n_subjects']); snakemake's validate does not
# fill defaults through a $ref, so each section is validated again on its own to fill them in.
validate(config, "../schemas/config.schema.yaml")
for _section in list(config):
    validate(
        config[_section], f"../schemas/config.{_section}.schema.yaml", set_default=True
    )
# What a schema cannot judge (a QC minimum above its maximum, an IDP no enabled family makes, a
# date that is not one): one error naming every key (cardiopheno.config_checks).
check_config(config)
# A checkpoint the config names is opened as data only: one that would run code stops the run here.
check_checkpoints(config["segmentation"])

SYNTHETIC = config["cohort"]["source"] == "synthetic"
COHORT_DIR = "results/cohort"
# synthetic.images: false (make demo-stats): a cohort of tables only, straight to the statistics.
IMAGES = not SYNTHETIC or config["synthetic"]["images"]
POPULATION_DIR = "results/population"


def manifest_path():
    """The manifest read by every per-batch job (the demo's generated one or the user's)."""
    if SYNTHETIC:
        return f"{COHORT_DIR}/manifest.csv"
    return config["cohort"]["manifest"]


def cohort_tables():
    """Paths of the covariates, diagnoses and deaths tables (docs/data-contracts.md cohort input)."""
    if not IMAGES:
        return {
            name: f"{POPULATION_DIR}/{name}.csv"
            for name in ("covariates", "diagnoses", "deaths")
        }
    if SYNTHETIC:
        return {
            name: f"{COHORT_DIR}/{name}.csv"
            for name in ("covariates", "diagnoses", "deaths")
        }
    return {
        name: config["cohort"][name] for name in ("covariates", "diagnoses", "deaths")
    }


# --- batches: owned by the batching code (cardiopheno.batching); keep other helpers outside ---
# A persisted plan (results/batches/plan.csv, eid -> batch) that only grows: subjects keep their
# batch, new subjects fill new batches, and a per-batch manifest results/batches/{batch}.csv is
# rewritten only when its rows change, so only those batches' jobs run again (mtime). Per-batch
# rules take batch_manifest as input, never the whole cohort manifest.
BATCH_DIR = "results/batches"


def _plan_batches():
    size = config["batching"]["batch_size"]
    if SYNTHETIC:
        # The demo manifest is written by synth_cohort; split_batches (batches.smk) splits it into
        # these batches, whose number is known from the configured cohort size.
        return planned_batches(config["synthetic"]["n_subjects"], size)
    if not workflow.is_main_process:
        # A job re-reading the workflow (cluster executors): the main process already validated
        # the manifest and wrote the plan; do not check 100,000 files again in every job.
        return read_index(BATCH_DIR)
    # The door (cardiopheno.cohort_check): the manifest, covariates, diagnoses and deaths, alone
    # and against each other, before anything runs (one error lists every problem); what the run
    # will analyse goes to results/run_summary/door*.csv. Then the plan is extended and only the
    # batch manifests whose rows changed are rewritten.
    checked = check_cohort(
        config["cohort"]["manifest"],
        {
            name: config["cohort"][name]
            for name in ("covariates", "diagnoses", "deaths")
        },
        covariate_columns(config),
    )
    write_door_summary(checked, "results/run_summary")
    logger.info(checked.describe())
    return materialise(
        checked.manifest,
        BATCH_DIR,
        size,
        tables={"covariates": checked.tables["covariates"]},
    )


BATCHES = _plan_batches()
N_BATCHES = len(BATCHES)


def batch_manifest(wildcards):
    """The manifest of one batch (validated, absolute paths): the input of every per-batch job."""
    return f"{BATCH_DIR}/{wildcards.batch}.csv"


def batch_covariates(wildcards):
    """The covariates rows of one batch's subjects (a job reading them re-runs only when they change)."""
    return f"{BATCH_DIR}/{wildcards.batch}.covariates.csv"


onstart:
    # A run killed with SIGKILL leaves its atomic writes' temporary files beside their targets;
    # Snakemake now holds the directory's lock, so no writer of the killed run is left to need them.
    remove_stale("results")


def batch_index(wildcards):
    """The batch number (b0007 -> 7); numbers can have gaps where a batch lost all its subjects."""
    return batch_number(wildcards.batch)


# --- end of batches ---


def cohort_has_dicom():
    """True when the user's manifest points at DICOM folders or zips (not NIfTI) for any view."""
    if SYNTHETIC:
        return False
    manifest = read_any(config["cohort"]["manifest"])
    for column in (
        c for c in ("sa", "la_2ch", "la_4ch", "ao") if c in manifest.columns
    ):
        paths = manifest[column].dropna().astype(str).str.strip().str.lower()
        paths = paths[paths != ""]
        if (~paths.str.endswith((".nii", ".nii.gz"))).any():
            return True
    return False


DICOM_INPUTS = cohort_has_dicom()


def cohort_views():
    """The views beside the short axis that are segmented: those configured that the cohort has
    (the demo cohort has every view the generator renders; a user's, its manifest's columns).
    """
    wanted = config["segmentation"]["views"]
    if SYNTHETIC:
        have = synthetic_views()
    else:
        have = set(read_any(config["cohort"]["manifest"]).columns)
    return [v for v in wanted if v in have]


VIEWS_SEGMENTED = cohort_views()


def view_segment_tables(wildcards):
    """The other views' segment tables of one batch (what view-reading phenotypes need)."""
    return [f"results/segment_{v}/{wildcards.batch}.parquet" for v in VIEWS_SEGMENTED]


def segment_input(wildcards):
    """What segmentation reads for a batch: the DICOM conversion's table, or the batch manifest."""
    if DICOM_INPUTS:
        return f"results/convert/{wildcards.batch}.parquet"
    return batch_manifest(wildcards)


def analysis_tables():
    """The phenotype and QC tables the statistics read: the imaging stages' merged tables, or the
    tables-only synthetic cohort's (synthetic.images: false)."""
    if not IMAGES:
        return {
            "phenotypes": f"{POPULATION_DIR}/phenotypes.parquet",
            "qc": f"{POPULATION_DIR}/qc.parquet",
        }
    return {"phenotypes": "results/phenotypes.parquet", "qc": "results/qc.parquet"}


def view_figures():
    """Figures of the per-frame curves: the atrial curves when the long-axis views are
    segmented, the strain bull's-eyes and curves when the strain family runs (none in the
    statistics-only demo)."""
    if not IMAGES:
        return []
    fmts = config["figures"]["formats"]
    out = []
    if {"la_2ch", "la_4ch"} & set(VIEWS_SEGMENTED):
        out += [f"results/figures/atria/atrial_curves.{ext}" for ext in fmts]
    if "strain" in config["phenotypes"]["families"]:
        out += [
            f"results/figures/strain/{name}.{ext}"
            for name in ("strain_bullseye", "strain_curves")
            for ext in fmts
        ]
    return out


def headline_figures():
    """Link text -> path of the figures the report's first page links to."""
    fig = config["figures"]
    ext = "png" if "png" in fig["formats"] else fig["formats"][0]
    out = {}
    if IMAGES:
        out["Quality control: failures per check"] = "results/figures/qc_summary.png"
    for idp in fig["idps"][:1]:
        out[f"{idp} by age and sex"] = f"results/figures/association/{idp}_by_age.{ext}"
    out["Age and sex effects of every IDP"] = (
        f"results/figures/association/effects_heatmap.{ext}"
    )
    out["PheWAS: Manhattan plot"] = f"results/figures/phewas/manhattan.{ext}"
    for outcome in fig["outcomes"][:1]:
        for idp in fig["km_idps"][:1]:
            out[f"Kaplan-Meier: {outcome.replace('_', ' ')} by {idp} quartile"] = (
                f"results/figures/survival/km_{outcome}__{idp}.{ext}"
            )
    out["Cox models: hazard ratios"] = f"results/figures/survival/cox_forest.{ext}"
    if f"results/figures/atria/atrial_curves.{ext}" in view_figures():
        out["Atrial volume over the cycle"] = (
            f"results/figures/atria/atrial_curves.{ext}"
        )
    if f"results/figures/strain/strain_bullseye.{ext}" in view_figures():
        out["Myocardial strain: AHA bull's-eye"] = (
            f"results/figures/strain/strain_bullseye.{ext}"
        )
    return out


def overview_inputs(wildcards):
    """What the report's first page reads (the run summary exists only when images were run)."""
    inputs = {
        **analysis_tables(),
        "covariates": cohort_tables()["covariates"],
        "figures": list(headline_figures().values()),
    }
    if IMAGES:
        inputs["counts"] = "results/run_summary/counts.csv"
    if IMAGES and not SYNTHETIC:  # the door's findings (written before the first job)
        inputs["door"] = "results/run_summary/door.csv"
        inputs["door_subjects"] = "results/run_summary/door_subjects.csv"
    return inputs


def final_outputs():
    """Everything the default target produces for the configured cohort."""
    if not IMAGES:
        return ["results/report/overview.rst", *rules.figures.input]
    outputs = ["results/figures/synth_montage.png"] if SYNTHETIC else []
    outputs += [
        "results/phenotypes.parquet",
        "results/qc.parquet",
        "results/figures/qc_summary.png",
        "results/qc/montages/outliers",
        "results/run_summary/counts.csv",
        "results/report/overview.rst",
        *rules.figures.input,
    ]
    return outputs
