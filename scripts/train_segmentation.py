"""Snakemake entry: train a segmentation model (cardiopheno.segment.train.train_from_settings)."""

from cardiopheno.segment.train import train_from_settings
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
train_from_settings(smk.params.settings, smk.output.checkpoint, threads=smk.threads)
