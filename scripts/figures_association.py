"""Snakemake entry: redraw the age/sex figures from the cached association tables."""

from cardiopheno.plots.figures import association_figures
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
association_figures(
    smk.input.phenotypes,
    smk.input.qc,
    smk.input.covariates,
    smk.input.associations,
    smk.input.reference_ranges,
    [*smk.output.by_age, *smk.output.heatmap],
    smk.params.cfg,
)
