# Helpers shared by all rule files (config validation, the cohort, batches, final outputs).
from pathlib import Path

from snakemake.utils import validate

from cardiopheno.batching import (
    batch_number,
    materialise,
    planned_batches,
    read_index,
    read_tables,
)
from cardiopheno.io.atomic import remove_stale
from cardiopheno.io.manifest import load_manifest
from cardiopheno.io.tables import read_any

# The whole config against config.schema.yaml, whose sections $ref one schema file each (errors
# then name the full key, e.g. instance['synthetic']['n_subjects']); snakemake's validate does not
# fill defaults through a $ref, so each section is validated again on its own to fill them in.
validate(config, "../schemas/config.schema.yaml")
for _section in list(config):
    validate(
        config[_section], f"../schemas/config.{_section}.schema.yaml", set_default=True
    )

SYNTHETIC = config["cohort"]["source"] == "synthetic"
COHORT_DIR = "results/cohort"


def manifest_path():
    """The manifest read by every per-batch job (the demo's generated one or the user's)."""
    if SYNTHETIC:
        return f"{COHORT_DIR}/manifest.csv"
    return config["cohort"]["manifest"]


def cohort_tables():
    """Paths of the covariates, diagnoses and deaths tables (DESIGN.md cohort layout)."""
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
    # Validates the user's manifest before anything runs (one error lists every problem), then
    # extends the plan and rewrites only the batch manifests whose rows changed.
    return materialise(
        load_manifest(config["cohort"]["manifest"]),
        BATCH_DIR,
        size,
        tables=read_tables({"covariates": config["cohort"]["covariates"]}),
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
    """True when the user's manifest points at DICOM folders or zips (not 4D NIfTI)."""
    if SYNTHETIC:
        return False
    sa = read_any(config["cohort"]["manifest"])["sa"].dropna().astype(str).str.lower()
    return bool((~sa.str.endswith((".nii", ".nii.gz"))).any())


DICOM_INPUTS = cohort_has_dicom()


def segment_input(wildcards):
    """What segmentation reads for a batch: the DICOM conversion's table, or the batch manifest."""
    if DICOM_INPUTS:
        return f"results/convert/{wildcards.batch}.parquet"
    return batch_manifest(wildcards)


def final_outputs():
    """Everything the default target produces for the configured cohort."""
    outputs = ["results/figures/synth_montage.png"] if SYNTHETIC else []
    outputs += [
        "results/phenotypes.parquet",
        "results/strain/curves.parquet",
        "results/qc.parquet",
        "results/figures/qc_summary.png",
        "results/qc/montages/outliers",
        "results/run_summary/counts.csv",
        *rules.figures.input,
    ]
    return outputs
