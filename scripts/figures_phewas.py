"""Snakemake entry: redraw the Manhattan plot from the cached PheWAS table."""

from cardiopheno.plots.figures import phewas_figures
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
phewas_figures(smk.input.phewas, list(smk.output.manhattan), smk.params.cfg)
