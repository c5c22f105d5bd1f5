"""Snakemake entry: the tables-only synthetic cohort (cardiopheno.synth.tables)."""

from pathlib import Path

from cardiopheno.synth.tables import write_table_cohort
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
write_table_cohort(Path(smk.output.phenotypes).parent, smk.params.n_subjects, smk.params.seed)
