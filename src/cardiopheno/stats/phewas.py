"""Phenome-wide association study: every IDP against every phecode with enough cases.

Model per (IDP, phecode): ``phecode ~ IDP(z) + age + sex + covariates`` (logistic), fitted for all
pairs at once by :func:`cardiopheno.stats.logistic.fit_pairs`; sex-restricted phecodes are fitted
in one sex without the sex term. IDPs are z-scored over the analysed subjects, so odds ratios are
per SD. Multiple testing: Benjamini-Hochberg FDR and Bonferroni over all tests of the table.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from cardiopheno.io.tables import ColumnSpec
from cardiopheno.stats.logistic import METHOD_NAMES, fit_pairs
from cardiopheno.stats.multiple_testing import CORRECTION_COLUMNS, add_corrections
from cardiopheno.stats.phecodes import PhecodeMap, case_control, map_diagnoses
from cardiopheno.stats.schema import NotEstimable, conform

log = logging.getLogger(__name__)

PHEWAS_COLUMNS: dict[str, ColumnSpec] = {
    "estimate": ColumnSpec("log-odds per SD", "logistic coefficient of the z-scored IDP"),
    "se": ColumnSpec("log-odds per SD", "Wald standard error of the coefficient"),
    "ci_low": ColumnSpec("log-odds per SD", "lower bound of the 95% Wald confidence interval"),
    "ci_high": ColumnSpec("log-odds per SD", "upper bound of the 95% Wald confidence interval"),
    "odds_ratio": ColumnSpec("per SD", "odds ratio per SD of the IDP, exp(estimate)"),
    "or_ci_low": ColumnSpec("per SD", "lower bound of the 95% CI of the odds ratio"),
    "or_ci_high": ColumnSpec("per SD", "upper bound of the 95% CI of the odds ratio"),
    "p": ColumnSpec("", "two-sided Wald p value"),
    "q_bh": ColumnSpec("", CORRECTION_COLUMNS["q_bh"]),
    "p_bonferroni": ColumnSpec("", CORRECTION_COLUMNS["p_bonferroni"]),
    "idp_sd": ColumnSpec("IDP unit", "SD used to z-score the IDP"),
}

#: Columns and dtypes of the PheWAS and top-hits tables (also when they have no rows).
PHEWAS_DTYPES: dict[str, str] = {
    "idp": "object", "term": "object", "phecode": "object", "description": "object",
    "category": "object", "sex_only": "object", "estimate": "float64", "se": "float64",
    "ci_low": "float64", "ci_high": "float64", "odds_ratio": "float64", "or_ci_low": "float64",
    "or_ci_high": "float64", "p": "float64", "q_bh": "float64", "p_bonferroni": "float64",
    "n": "int64", "n_cases": "int64", "n_controls": "int64", "converged": "bool",
    "method": "object", "iterations": "int32", "idp_sd": "float64", "covariates": "object",
    "phecode_map": "object",
}  # fmt: skip


#: Column of the sex term in :func:`_covariate_design` (dropped for sex-restricted phecodes).
SEX_COLUMN = 2


def zscore(frame: pd.DataFrame, idps: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """z-scores (NaN kept) of the IDP columns and their SDs (ddof 1)."""
    x = frame[list(idps)].to_numpy(dtype=float)
    mean, sd = np.nanmean(x, 0), np.nanstd(x, 0, ddof=1)
    if np.any(~(sd > 0)):
        bad = [i for i, s in zip(idps, sd, strict=True) if not s > 0]
        raise ValueError(f"IDPs with zero or undefined SD cannot be z-scored: {bad}")
    return (x - mean) / sd, sd


def run_phewas(
    frame: pd.DataFrame,
    diagnoses: pd.DataFrame,
    idps: Sequence[str],
    pmap: PhecodeMap,
    covariates: Sequence[str] = (),
    min_code_count: int = 1,
    min_cases: int = 20,
    firth_cases: int = 0,
    firth_p: float = 0.05,
    separation_beta: float = 10.0,
    threads: int | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """PheWAS of ``idps`` (columns of ``frame``, one row per analysed subject) on phecodes.

    ``frame`` needs ``eid``, ``age``, ``sex`` and the ``covariates``; subjects with a missing
    covariate are dropped (logged). Returns one row per IDP and phecode. IDPs without a positive
    SD (fewer than two values) are left out with a warning; when no phecode has ``min_cases``
    cases, or no IDP is left, :class:`~cardiopheno.stats.schema.NotEstimable` says why.
    """
    frame = _complete_subjects(frame, ["eid", "age", "sex", *covariates])
    counts = map_diagnoses(diagnoses, pmap)
    cc = case_control(counts, frame[["eid", "sex"]], pmap, min_code_count, min_cases)
    log.info(
        "%d phecodes with >= %d cases among %d subjects", len(cc.phecodes), min_cases, len(frame)
    )
    if not cc.phecodes:
        raise NotEstimable(
            f"no phecode has at least {min_cases} cases among {len(frame)} analysed subjects"
        )
    idps = _idps_with_spread(frame, idps)
    z, sd = zscore(frame, idps)
    design = _covariate_design(frame, covariates)
    fit_options = dict(
        firth_cases=firth_cases, firth_p=firth_p, separation_beta=separation_beta, threads=threads
    )
    tables = []
    restricted = cc.info["sex"].notna().to_numpy()
    for group, cols in (("both", ~restricted), ("one sex", restricted)):
        idx = np.flatnonzero(cols)
        if idx.size == 0:
            continue
        d = design if group == "both" else np.delete(design, SEX_COLUMN, axis=1)
        res = fit_pairs(z, d, cc.cases[:, idx], cc.valid[:, idx], **fit_options)
        tables.append(_pair_rows(res, idps, np.asarray(cc.phecodes)[idx], sd))
    out = _with_intervals(pd.concat(tables, ignore_index=True), alpha)
    info = cc.info[["phecode", "description", "category", "sex"]].rename(
        columns={"sex": "sex_only"}
    )
    info["sex_only"] = info["sex_only"].map({0.0: "female", 1.0: "male"}).fillna("both")
    out = out.merge(info, on="phecode", how="left")
    out["covariates"] = " + ".join(["age", "sex", *covariates])
    out["phecode_map"] = pmap.version
    out = add_corrections(out)
    return conform(out.sort_values(["p", "idp", "phecode"]), PHEWAS_DTYPES)


def _complete_subjects(frame: pd.DataFrame, need: list[str]) -> pd.DataFrame:
    """The subjects with every covariate (``need``: eid first, then the covariates)."""
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise KeyError(f"PheWAS covariates missing from the analysis table: {missing}")
    complete = frame[need[1:]].notna().all(axis=1)
    if not complete.all():
        log.warning(
            "%d subjects with missing covariates left out of the PheWAS", int((~complete).sum())
        )
    return frame[complete].reset_index(drop=True)


def _idps_with_spread(frame: pd.DataFrame, idps: Sequence[str]) -> Sequence[str]:
    """The IDPs with a positive SD (the others left out with a warning); NotEstimable if none."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanstd of an all-missing column
        spread = np.nanstd(frame[list(idps)].to_numpy(dtype=float), 0, ddof=1)
    flat = [i for i, s in zip(idps, spread, strict=True) if not s > 0]
    if flat:
        log.warning("IDPs with zero or undefined SD left out of the PheWAS: %s", flat)
        idps = [i for i in idps if i not in flat]
    if not idps:
        raise NotEstimable(
            "no IDP has a positive SD (two or more distinct values) among "
            f"{len(frame)} analysed subjects"
        )
    return idps


def _covariate_design(frame: pd.DataFrame, covariates: Sequence[str]) -> np.ndarray:
    """[1, age, sex, covariates...]: covariates are centred and scaled for the conditioning of
    the Newton steps; the IDP coefficient (the only one reported) does not depend on their
    affine scaling."""

    def standardised(col: str) -> np.ndarray:
        x = frame[col].to_numpy(float)
        sd = x.std()
        return (x - x.mean()) / (sd if sd > 0 else 1.0)

    cov_cols = [np.ones(len(frame)), standardised("age"), frame["sex"].to_numpy(float)]
    cov_cols += [standardised(c) for c in covariates]
    return np.column_stack(cov_cols)


def _pair_rows(res, idps: Sequence[str], phecodes: np.ndarray, sd: np.ndarray) -> pd.DataFrame:
    """One row per (IDP, phecode) of a :func:`fit_pairs` result, IDP-major."""
    k_idx, p_idx = np.meshgrid(np.arange(len(idps)), np.arange(len(phecodes)), indexing="ij")
    return pd.DataFrame(
        {
            "idp": np.asarray(idps)[k_idx.ravel()],
            "phecode": phecodes[p_idx.ravel()],
            "estimate": res.beta.ravel(),
            "se": res.se.ravel(),
            "p": res.p.ravel(),
            "n_cases": res.n_cases.ravel(),
            "n_controls": res.n_controls.ravel(),
            "converged": res.converged.ravel(),
            "method": [METHOD_NAMES[m] for m in res.method.ravel()],
            "iterations": res.n_iter.ravel(),
            "idp_sd": sd[k_idx.ravel()],
        }
    )


def _with_intervals(out: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Add the term, Wald intervals, odds ratios and ``n``."""
    zcrit = sps.norm.ppf(1 - alpha / 2)
    out["term"] = "idp_z"
    out["ci_low"] = out["estimate"] - zcrit * out["se"]
    out["ci_high"] = out["estimate"] + zcrit * out["se"]
    out["odds_ratio"] = np.exp(out["estimate"])
    out["or_ci_low"] = np.exp(out["ci_low"])
    out["or_ci_high"] = np.exp(out["ci_high"])
    out["n"] = out["n_cases"] + out["n_controls"]
    return out


def top_hits(phewas: pd.DataFrame, n: int = 25, q_threshold: float = 0.05) -> pd.DataFrame:
    """The ``n`` strongest associations with ``q_bh`` below the threshold (all, if fewer)."""
    hits = phewas[phewas["q_bh"] < q_threshold].sort_values("p")
    return conform(hits.head(n), PHEWAS_DTYPES)
