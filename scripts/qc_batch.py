"""Snakemake entry: one batch's per-subject QC table and montages (cardiopheno.qc.batch)."""

from cardiopheno.qc.aorta import AortaQCThresholds
from cardiopheno.qc.batch import qc_batch
from cardiopheno.qc.checks import QCThresholds
from cardiopheno.qc.views import ViewQCThresholds
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
qc_batch(
    smk.input.segment,
    smk.input.manifest,
    smk.input.phenotypes,
    smk.output.table,
    smk.output.montages,
    QCThresholds.from_config(smk.params.thresholds),
    config=smk.config,
    view_tables=list(smk.input.views),
    aorta=AortaQCThresholds.from_config(smk.params.thresholds.get("aorta")),
    view_thresholds=ViewQCThresholds.from_config(smk.params.thresholds.get("views")),
)
