"""Snakemake entry: one batch's imaging phenotypes (cardiopheno.phenotypes.batch)."""

from cardiopheno.phenotypes.batch import phenotypes_batch
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
phenotypes_batch(
    smk.input.segment,
    smk.output.table,
    covariates=smk.input.covariates,
    families=smk.params.families,
    ed_frame=smk.params.ed_frame,
    config=smk.config,
    view_tables=list(smk.input.views),
    curves_out=smk.output.curves,
    manifest=smk.input.manifest,
    options=smk.params.options,
)
