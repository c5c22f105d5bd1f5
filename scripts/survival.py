"""Snakemake entry: incident outcomes after imaging and Cox models per IDP."""

from cardiopheno.stats.pipeline import survival_stage
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
survival_stage(
    smk.input.phenotypes,
    smk.input.qc,
    smk.input.covariates,
    smk.input.diagnoses,
    smk.input.deaths,
    smk.output.cox,
    smk.output.outcomes,
    smk.params.cfg,
    config=smk.config,
)
