"""Snakemake entry: the cohort's atrial volume curves (cardiopheno.plots.figures.atrial_figures)."""

from cardiopheno.plots.figures import atrial_figures
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
atrial_figures(smk.input.curves, smk.input.qc, smk.input.covariates, smk.output.curves)
