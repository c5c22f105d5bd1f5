"""Snakemake entry: write the synthetic demo cohort (cardiopheno.synth)."""

from pathlib import Path

from cardiopheno.synth import generate_cohort
from cardiopheno.workflow_log import setup

setup(snakemake)  # noqa: F821
p = snakemake.params  # noqa: F821
generate_cohort(
    Path(snakemake.output.manifest).parent,  # noqa: F821
    n_subjects=p.n_subjects,
    seed=p.seed,
    fault_fraction=p.fault_fraction,
    n_jobs=snakemake.threads,  # noqa: F821
)
