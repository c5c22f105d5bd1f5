"""Cohort-level entry points of the statistics stages (what the Snakemake scripts call).

Each reads the cached cohort tables, keeps QC-passed subjects, runs one analysis and writes its
tables with :func:`cardiopheno.io.tables.write_table`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import pandas as pd

from cardiopheno.io.tables import read_any, write_table
from cardiopheno.stats.association import (
    ASSOCIATION_COLUMNS,
    REFERENCE_COLUMNS,
    fit_age_sex,
    reference_ranges,
)
from cardiopheno.stats.data import analysis_frame, select_idps
from cardiopheno.stats.outcomes import OUTCOME_COLUMNS, OutcomeDefinition, derive_outcomes
from cardiopheno.stats.phecodes import load_phecode_map
from cardiopheno.stats.phewas import PHEWAS_COLUMNS, run_phewas, top_hits
from cardiopheno.stats.survival import COX_COLUMNS, fit_cox

log = logging.getLogger(__name__)
PathLike = str | os.PathLike


def load_frame(phenotypes: PathLike, qc: PathLike | None, covariates: PathLike) -> pd.DataFrame:
    """The analysis table (QC-passed subjects, IDPs plus covariates)."""
    return analysis_frame(read_any(phenotypes), read_any(qc) if qc else None, read_any(covariates))


def association_stage(
    phenotypes: PathLike,
    qc: PathLike | None,
    covariates: PathLike,
    out_associations: PathLike,
    out_ranges: PathLike,
    cfg: Mapping,
    config: Mapping | None = None,
) -> None:
    frame = load_frame(phenotypes, qc, covariates)
    idps = select_idps(frame, cfg.get("idps"))
    assoc = fit_age_sex(
        frame,
        idps,
        covariates=cfg.get("covariates", ["bsa_m2"]),
        cov_type=cfg.get("cov_type", "HC3"),
        age_centre=cfg.get("age_centre", 60.0),
    )
    ranges = reference_ranges(
        frame, idps, cfg.get("age_bands", [40, 50, 60, 70, 80, 90]), cfg.get("reference_min_n", 20)
    )
    log.info("association: %d IDPs, n = %d QC-passed subjects", len(idps), len(frame))
    write_table(assoc, out_associations, ASSOCIATION_COLUMNS, config=config)
    write_table(ranges, out_ranges, REFERENCE_COLUMNS, config=config)


def phewas_stage(
    phenotypes: PathLike,
    qc: PathLike | None,
    covariates: PathLike,
    diagnoses: PathLike,
    out_phewas: PathLike,
    out_top: PathLike,
    cfg: Mapping,
    threads: int | None = None,
    config: Mapping | None = None,
) -> None:
    frame = load_frame(phenotypes, qc, covariates)
    idps = select_idps(frame, cfg.get("idps"))
    result = run_phewas(
        frame,
        read_any(diagnoses),
        idps,
        load_phecode_map(cfg.get("phecode_map", "phecode1.2")),
        covariates=cfg.get("covariates", []),
        min_code_count=cfg.get("min_code_count", 1),
        min_cases=cfg.get("min_cases", 20),
        firth_cases=cfg.get("firth_below_cases", 50),
        firth_p=cfg.get("firth_below_p", 0.05),
        separation_beta=cfg.get("separation_beta", 10.0),
        threads=threads,
    )
    write_table(result, out_phewas, PHEWAS_COLUMNS, config=config)
    hits = top_hits(result, cfg.get("top_hits", 25), cfg.get("q_threshold", 0.05))
    write_table(hits, out_top, PHEWAS_COLUMNS, config=config)


def outcome_definitions(cfg: Mapping) -> list[OutcomeDefinition]:
    return [OutcomeDefinition.from_config(name, od) for name, od in cfg["outcomes"].items()]


def survival_stage(
    phenotypes: PathLike,
    qc: PathLike | None,
    covariates: PathLike,
    diagnoses: PathLike,
    deaths: PathLike,
    out_cox: PathLike,
    out_outcomes: PathLike,
    cfg: Mapping,
    config: Mapping | None = None,
) -> None:
    frame = load_frame(phenotypes, qc, covariates)
    idps = select_idps(frame, cfg.get("idps"))
    outcomes = derive_outcomes(
        frame[["eid", "imaging_date"]],
        read_any(diagnoses),
        read_any(deaths),
        outcome_definitions(cfg),
        cfg.get("end_of_followup"),
    )
    cox = fit_cox(
        frame, outcomes, idps, cfg.get("covariates", ["age", "sex"]), cfg.get("min_events", 10)
    )
    write_table(outcomes, out_outcomes, OUTCOME_COLUMNS, config=config)
    write_table(cox, out_cox, COX_COLUMNS, config=config)
