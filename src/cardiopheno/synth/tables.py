"""A synthetic cohort as tables only (no images), for the statistics and figures stages at scale.

The population model (:mod:`cardiopheno.synth.population`) and the outcome model
(:mod:`cardiopheno.synth.outcomes`) give, in about a second for 20,000 subjects, what the imaging
stages would hand on: ``covariates.csv``, ``diagnoses.csv``, ``deaths.csv`` as a user brings
them, ``phenotypes.parquet`` (the true IDPs, indexed ones divided by the Mosteller BSA, without
segmentation or measurement error) and ``qc.parquet`` (every subject passes), plus the generating
coefficients in ``effects.parquet``. So the association, PheWAS and survival figures can be seen
on a cohort with the power of a real one (``make demo-stats``).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pandas as pd

from cardiopheno.io.tables import ColumnSpec, write_table
from cardiopheno.synth.cohort import IDP_SPECS, write_record_tables
from cardiopheno.synth.outcomes import sample_outcomes
from cardiopheno.synth.population import TRUE_IDPS, sample_population

log = logging.getLogger(__name__)

#: IDPs divided by the BSA (suffix i), as the lv_function / rv_function families write them.
INDEXED = ("LVEDV", "LVESV", "LVSV", "LVM", "RVEDV", "RVESV", "RVSV")


def phenotype_table(pop: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, ColumnSpec]]:
    """The true IDPs of ``pop`` (and the indexed ones) as a phenotypes table with its columns."""
    out = pop[["eid", *TRUE_IDPS]].copy()
    for name in INDEXED:
        out[f"{name}i"] = pop[name] / pop["bsa_m2"]
    cols = {
        c: ColumnSpec(IDP_SPECS[c][0], f"{IDP_SPECS[c][1]}: population-model value, no imaging")
        for c in out.columns
        if c != "eid"
    }
    return out, cols


def write_table_cohort(out_dir: str | os.PathLike, n_subjects: int, seed: int = 0) -> Path:
    """Write the tables-only cohort into ``out_dir``; returns the phenotypes table's path."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pop = sample_population(n_subjects, seed)
    outcomes = sample_outcomes(pop, seed)
    write_record_tables(out_dir, pop, outcomes)
    meta = {"seed": str(seed), "n_subjects": str(n_subjects), "images": "false"}
    write_table(
        outcomes.effects,
        out_dir / "effects.parquet",
        columns={"estimate": ColumnSpec("see scale", "true coefficient of the generating model")},
        extra=meta,
    )
    qc = pd.DataFrame({"eid": pop["eid"], "qc_pass": True, "qc_reasons": ""})
    write_table(qc, out_dir / "qc.parquet", extra=meta)
    pheno, cols = phenotype_table(pop)
    path = out_dir / "phenotypes.parquet"
    write_table(pheno, path, columns=cols, extra=meta)
    log.info(
        "tables-only cohort of %d subjects (%d diagnoses, %d deaths) written in %.1f s",
        n_subjects, len(outcomes.diagnoses), len(outcomes.deaths), time.perf_counter() - t0,
    )  # fmt: skip
    return path
