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
    manifest=smk.input.manifest,
    options=smk.params.options,
    strain_curves=smk.output.strain,
)
