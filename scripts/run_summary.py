"""Snakemake entry: the run summary (cardiopheno.summary)."""

import logging

import pandas as pd

from cardiopheno.io.atomic import atomic_path
from cardiopheno.io.manifest import load_manifest
from cardiopheno.io.tables import read_any, read_table, write_table
from cardiopheno.summary import stage_counts, subject_outcomes
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
segment = pd.concat([read_table(p) for p in smk.input.segment], ignore_index=True)
outcomes = subject_outcomes(
    load_manifest(smk.input.manifest, check_files=False),
    segment,
    read_table(smk.input.qc),
    read_any(smk.input.covariates),
)
write_table(outcomes, smk.output.subjects, config=smk.config)
counts = stage_counts(outcomes)
with atomic_path(smk.output.counts) as tmp:
    counts.to_csv(tmp, index=False)
logging.getLogger("run_summary").info("\n%s", counts.to_string(index=False))
