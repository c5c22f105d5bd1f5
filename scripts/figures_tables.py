"""Snakemake entry: CSV copies of the result tables for the HTML report."""

from cardiopheno.plots.figures import tables_for_report
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
tables_for_report(dict(smk.input), dict(smk.output))
