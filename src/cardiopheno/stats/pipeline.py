"""Cohort-level entry points of the statistics stages (what the Snakemake scripts call).

Each reads the cached cohort tables, keeps QC-passed subjects, runs one analysis and writes its
tables with :func:`cardiopheno.io.tables.write_table`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import pandas as pd

from cardiopheno.io.cohort_tables import read_cohort_table
from cardiopheno.io.tables import read_any, write_table
from cardiopheno.stats.association import (
    ASSOCIATION_COLUMNS,
    ASSOCIATION_DTYPES,
    REFERENCE_COLUMNS,
    fit_age_sex,
    reference_ranges,
)
from cardiopheno.stats.data import analysis_frame, require_columns, select_idps
from cardiopheno.stats.outcomes import OUTCOME_COLUMNS, OutcomeDefinition, derive_outcomes
from cardiopheno.stats.phecodes import load_phecode_map
from cardiopheno.stats.phewas import PHEWAS_COLUMNS, PHEWAS_DTYPES, run_phewas, top_hits
from cardiopheno.stats.schema import NOT_ESTIMABLE_KEY, NotEstimable, empty_table
from cardiopheno.stats.survival import COX_COLUMNS, COX_DTYPES, fit_cox

log = logging.getLogger(__name__)
PathLike = str | os.PathLike


def _extra(reason: str) -> dict[str, str] | None:
    """File metadata recording why a table has no estimates (read back by the figure rules)."""
    return {NOT_ESTIMABLE_KEY: reason} if reason else None


def load_frame(phenotypes: PathLike, qc: PathLike | None, covariates: PathLike) -> pd.DataFrame:
    """The analysis table (QC-passed subjects, IDPs plus covariates)."""
    return analysis_frame(
        read_any(phenotypes), read_any(qc) if qc else None, read_cohort_table(covariates)
    )


def association_stage(
    phenotypes: PathLike,
    qc: PathLike | None,
    covariates: PathLike,
    out_associations: PathLike,
    out_ranges: PathLike,
    cfg: Mapping,
    config: Mapping | None = None,
) -> None:
    """Age/sex associations and reference ranges. Too few subjects: an empty associations table
    (and reference ranges with counts but no statistics), with a logged warning saying why."""
    frame = load_frame(phenotypes, qc, covariates)
    idps = select_idps(frame, cfg.get("idps"), "association.idps")
    covs = list(cfg.get("covariates", ["bsa_m2"]))
    require_columns(frame, covs, "association.covariates")
    log.info("association: %d IDPs, n = %d QC-passed subjects", len(idps), len(frame))
    reason = ""
    try:
        assoc = fit_age_sex(
            frame,
            idps,
            covariates=covs,
            cov_type=cfg.get("cov_type", "HC3"),
            age_centre=cfg.get("age_centre", 60.0),
        )
    except NotEstimable as exc:
        reason = f"association: {exc}, among {len(frame)} QC-passed subjects"
        log.warning("%s; wrote an empty associations table", reason)
        assoc = empty_table(ASSOCIATION_DTYPES)
    min_n = cfg.get("reference_min_n", 20)
    ranges = reference_ranges(frame, idps, cfg.get("age_bands", [40, 50, 60, 70, 80, 90]), min_n)
    if not ranges["mean"].notna().any():
        log.warning(
            "association: no sex and age band has %d subjects (association.reference_min_n); "
            "reference ranges carry counts only",
            min_n,
        )
    write_table(assoc, out_associations, ASSOCIATION_COLUMNS, config=config, extra=_extra(reason))
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
    """PheWAS and its top hits. Too few cases: empty tables, with a logged warning saying why."""
    frame = load_frame(phenotypes, qc, covariates)
    idps = select_idps(frame, cfg.get("idps"), "phewas.idps")
    covs = list(cfg.get("covariates", []))
    require_columns(frame, covs, "phewas.covariates")
    pmap = load_phecode_map(cfg.get("phecode_map", "phecode1.2"))
    min_cases = cfg.get("min_cases", 20)
    reason = ""
    try:
        result = run_phewas(
            frame,
            read_cohort_table(diagnoses),
            idps,
            pmap,
            covariates=covs,
            min_code_count=cfg.get("min_code_count", 1),
            min_cases=min_cases,
            firth_cases=cfg.get("firth_below_cases", 50),
            firth_p=cfg.get("firth_below_p", 0.05),
            separation_beta=cfg.get("separation_beta", 10.0),
            threads=threads,
        )
    except NotEstimable as exc:
        reason = f"phewas: {exc} of {len(frame)} QC-passed (phewas.min_cases = {min_cases})"
        log.warning("%s; wrote empty tables", reason)
        result = empty_table(PHEWAS_DTYPES)
    write_table(result, out_phewas, PHEWAS_COLUMNS, config=config, extra=_extra(reason))
    hits = top_hits(result, cfg.get("top_hits", 25), cfg.get("q_threshold", 0.05))
    write_table(hits, out_top, PHEWAS_COLUMNS, config=config, extra=_extra(reason))


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
    """Incident outcomes and Cox models. Too few events: every (outcome, IDP) row is kept, marked
    not fitted with a note, and a logged warning says why."""
    frame = load_frame(phenotypes, qc, covariates)
    idps = select_idps(frame, cfg.get("idps"), "survival.idps")
    covs = list(cfg.get("covariates", ["age", "sex"]))
    require_columns(frame, covs, "survival.covariates")
    if "imaging_date" not in frame.columns:
        raise KeyError("survival needs an imaging_date column in the covariates table")
    definitions = outcome_definitions(cfg)
    if not definitions:
        raise ValueError("survival.outcomes defines no outcome")
    outcomes = derive_outcomes(
        frame[["eid", "imaging_date"]],
        read_cohort_table(diagnoses),
        read_cohort_table(deaths),
        definitions,
        cfg.get("end_of_followup"),
    )
    min_events = cfg.get("min_events", 10)
    reason = ""
    try:
        cox = fit_cox(frame, outcomes, idps, covs, min_events)
    except NotEstimable as exc:
        cox = empty_table(COX_DTYPES)
        reason = f"survival: {exc} ({len(frame)} QC-passed subjects)"
    if not reason and not cox["converged"].any():
        most = int(outcomes.groupby("outcome", sort=False)["event"].sum().max())
        why = (
            f"at most {most} events for any outcome (survival.min_events = {min_events})"
            if most < min_events
            else "every fit failed (see the note column)"
        )
        reason = (
            f"survival: no Cox model could be fitted: {why}, among {len(frame)} QC-passed subjects"
        )
    if reason:
        log.warning("%s; wrote rows marked not fitted", reason)
    write_table(outcomes, out_outcomes, OUTCOME_COLUMNS, config=config)
    write_table(cox, out_cox, COX_COLUMNS, config=config, extra=_extra(reason))
