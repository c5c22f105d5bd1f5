"""Snakemake entry: montages of the subjects failing only the cohort outlier check."""

from cardiopheno.qc.batch import outlier_montages
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
outlier_montages(smk.input.qc, list(smk.input.segment), list(smk.input.manifests), smk.output[0])
