"""Snakemake entry: the run summary (cardiopheno.summary)."""

from cardiopheno.summary import write_run_summary
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
write_run_summary(
    smk.input.manifest,
    smk.input.segment,
    smk.input.qc,
    smk.input.covariates,
    smk.output.subjects,
    smk.output.counts,
    config=smk.config,
    diagnoses=smk.input.diagnoses,
    deaths=smk.input.deaths,
    records_out=smk.output.records,
)
