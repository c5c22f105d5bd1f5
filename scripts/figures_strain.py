"""Snakemake entry: strain bull's-eyes and mean global strain curves from the cached tables."""

from cardiopheno.plots.strain import strain_figures
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
strain_figures(
    smk.input.phenotypes,
    smk.input.qc,
    smk.input.covariates,
    list(smk.input.curves),
    list(smk.output.figures),
    smk.params.cfg,
)
