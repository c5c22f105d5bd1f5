"""Snakemake entry: convert one batch's DICOM folders/zips to NIfTI (cardiopheno.io.dicom_batch)."""

from cardiopheno.io.dicom_batch import convert_batch_files
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
convert_batch_files(
    smk.input.manifest,
    smk.output.images,
    smk.output.table,
    dicom_config=smk.params.dicom,
    config=smk.config,
)
