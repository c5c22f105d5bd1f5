"""Snakemake entry: merge QC batches, add the cohort outlier check, draw the QC summary."""

from cardiopheno.qc.batch import merge_qc
from cardiopheno.qc.checks import QCThresholds
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
merge_qc(
    list(smk.input.qc),
    smk.input.phenotypes,
    smk.output.table,
    smk.output.summary,
    QCThresholds.from_config(smk.params.thresholds),
    config=smk.config,
)
