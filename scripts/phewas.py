"""Snakemake entry: PheWAS of the QC-passed subjects' IDPs on phecodes."""

from cardiopheno.stats.pipeline import phewas_stage
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
phewas_stage(
    smk.input.phenotypes,
    smk.input.qc,
    smk.input.covariates,
    smk.input.diagnoses,
    smk.output.phewas,
    smk.output.top_hits,
    smk.params.cfg,
    threads=smk.threads,
    config=smk.config,
)
