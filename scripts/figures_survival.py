"""Snakemake entry: redraw Kaplan-Meier curves and the HR forest plot from cached tables."""

from cardiopheno.plots.figures import survival_figures
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
survival_figures(
    smk.input.phenotypes,
    smk.input.qc,
    smk.input.covariates,
    smk.input.cox,
    smk.input.outcomes,
    [*smk.output.km, *smk.output.forest],
    smk.params.cfg,
)
