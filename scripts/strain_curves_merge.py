"""Snakemake entry: merge per-batch strain curves into results/strain/curves.parquet."""

from cardiopheno.phenotypes.batch import merge_strain_curves
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
merge_strain_curves(list(smk.input), smk.output[0], config=smk.config)
