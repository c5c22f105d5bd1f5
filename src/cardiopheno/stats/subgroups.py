"""Subgroup audit: how a measure (QC failure, segmentation Dice, phenotype error) differs between
groups of subjects (sex, age band, pathology), and the spread between the best and worst group.

Studies of UK Biobank segmentation models found Dice gaps of several points between groups
(Puyol-Anton et al., MICCAI 2021; Front. Cardiovasc. Med. 2022); this is the table that shows
whether ours has one. Used by the report (QC failure rate and phenotypes by sex and age band, on
any cohort) and by ``benchmarks/subgroup_audit.py`` (against ground truth).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cardiopheno.io.covariates import sex_codes

SEX_NAMES = {0: "women", 1: "men"}


def age_bands(age: pd.Series, width: int = 10) -> pd.Series:
    """Age in years to a band label of ``width`` years (``"50-59"``); "unknown" when missing."""
    a = pd.to_numeric(age, errors="coerce")
    lo = (np.floor(a / width) * width).astype("Int64")
    out = lo.astype(str) + "-" + (lo + width - 1).astype(str)
    return out.where(a.notna(), "unknown").astype(str)


def sex_groups(sex: pd.Series) -> pd.Series:
    """Sex in any coding :func:`cardiopheno.io.covariates.sex_codes` accepts to "women"/"men"
    ("unknown" when it cannot be read)."""
    try:
        codes = sex_codes(sex)
    except (ValueError, KeyError):
        codes = pd.to_numeric(sex, errors="coerce")
    return pd.Series(codes, index=sex.index).map(SEX_NAMES).fillna("unknown").astype(str)


def by_group(
    frame: pd.DataFrame, group: str, columns: Sequence[str], stat: str = "mean"
) -> pd.DataFrame:
    """One row per value of ``group`` (sorted): ``n`` subjects and ``stat`` (``mean`` or
    ``median``) of each of ``columns`` (NaN skipped; booleans give the fraction True)."""
    data = frame[[group, *columns]].copy()
    for c in columns:
        data[c] = pd.to_numeric(data[c].astype("float64"), errors="coerce")
    grouped = data.groupby(group, sort=True, dropna=False)
    out = grouped[list(columns)].agg(stat)
    out.insert(0, "n", grouped.size())
    return out.reset_index()


def spread(table: pd.DataFrame, columns: Sequence[str], min_n: int = 1) -> dict[str, float]:
    """Max minus min of each column over the groups of a :func:`by_group` table with at least
    ``min_n`` subjects (NaN when fewer than two such groups have a value)."""
    keep = table[table["n"] >= min_n]
    out = {}
    for c in columns:
        v = keep[c].dropna()
        out[c] = float(v.max() - v.min()) if len(v) >= 2 else float("nan")
    return out


def qc_failure_by_group(qc: pd.DataFrame, covariates: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """QC failure rate (%) by sex and by 10-year age band over every subject QC saw: tables
    ``group, n, failed, rate_pct`` keyed "sex" and "age band". Subjects without covariates are
    the group "unknown"."""
    qc = qc.assign(eid=qc["eid"].astype(str))
    cov = covariates.assign(eid=covariates["eid"].astype(str))
    cov = cov.drop_duplicates("eid")[["eid", *(c for c in ("sex", "age") if c in cov.columns)]]
    frame = qc[["eid", "qc_pass"]].merge(cov, on="eid", how="left")
    frame["failed"] = ~frame["qc_pass"].astype(bool)
    frame["sex_group"] = sex_groups(frame.get("sex", pd.Series(np.nan, index=frame.index)))
    frame["age_group"] = age_bands(frame.get("age", pd.Series(np.nan, index=frame.index)))
    out = {}
    for name, col in (("sex", "sex_group"), ("age band", "age_group")):
        t = by_group(frame, col, ["failed"], "sum").rename(columns={col: "group"})
        t["failed"] = t["failed"].astype(int)
        t["rate_pct"] = 100.0 * t["failed"] / t["n"]
        out[name] = t
    return out
