"""Snakemake entry: split the demo cohort's manifest into per-batch manifests."""

from pathlib import Path

from cardiopheno.batching import split_manifest
from cardiopheno.workflow_log import setup

setup(snakemake)  # noqa: F821
split_manifest(
    snakemake.input.manifest,  # noqa: F821
    Path(snakemake.output.plan).parent,  # noqa: F821
    snakemake.params.batch_size,  # noqa: F821
    expected=[Path(p).stem for p in snakemake.output.manifests],  # noqa: F821
    tables={"covariates": snakemake.input.covariates},  # noqa: F821
)
