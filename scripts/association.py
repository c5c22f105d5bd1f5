"""Snakemake entry: age/sex associations and reference ranges of the QC-passed subjects."""

from cardiopheno.stats.pipeline import association_stage
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
association_stage(
    smk.input.phenotypes,
    smk.input.qc,
    smk.input.covariates,
    smk.output.associations,
    smk.output.reference_ranges,
    smk.params.cfg,
    config=smk.config,
)
