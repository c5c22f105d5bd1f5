"""Snakemake entry: merge per-batch phenotype tables into results/phenotypes.parquet."""

from cardiopheno.phenotypes.batch import merge_phenotypes
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
merge_phenotypes(list(smk.input), smk.output[0], config=smk.config)
