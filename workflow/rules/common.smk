# Helpers shared by all rule files (config validation, the cohort, batches, final outputs).
from pathlib import Path

from snakemake.utils import validate

from cardiopheno.batching import batch_name, n_batches_for
from cardiopheno.io.manifest import load_manifest

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
def n_subjects():
    if SYNTHETIC:
        return config["synthetic"]["n_subjects"]
    # Validates the user's manifest before anything runs: one error lists every problem.
    return len(load_manifest(config["cohort"]["manifest"]))


def n_batches():
    fixed = config["batching"]["n_batches"]
    return (
        fixed
        if fixed
        else n_batches_for(n_subjects(), config["batching"]["batch_size"])
    )


N_BATCHES = n_batches()
BATCHES = [batch_name(i) for i in range(N_BATCHES)]


def batch_index(wildcards):
    return int(wildcards.batch[1:])


# --- end of batches ---


def final_outputs():
    """Everything the default target produces for the configured cohort."""
    outputs = []
    if SYNTHETIC:
        outputs.append("results/figures/synth_montage.png")
    return outputs
