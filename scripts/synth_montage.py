"""Snakemake entry: montage of mid-ventricular ED and ES slices of a few synthetic subjects."""

from pathlib import Path

from cardiopheno.synth.montage import write_montage
from cardiopheno.workflow_log import setup

setup(snakemake)  # noqa: F821
write_montage(Path(snakemake.input.manifest).parent, snakemake.output[0])  # noqa: F821
