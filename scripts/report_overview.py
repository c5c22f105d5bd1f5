"""Snakemake entry: the report's first page (cardiopheno.report)."""

from cardiopheno.report import write_overview
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
write_overview(
    smk.input.qc,
    smk.input.phenotypes,
    smk.input.covariates,
    smk.output.rst,
    smk.output.metadata,
    smk.params.idps,
    smk.params.figures,
    counts=smk.input.get("counts"),
    door=(smk.input.door, smk.input.door_subjects) if smk.input.get("door") else None,
)
