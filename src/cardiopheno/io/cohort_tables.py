"""The cohort's covariates, diagnoses and deaths tables: as every stage reads them, and the
checks of one table at a time that the cohort check (:mod:`cardiopheno.cohort_check`) runs
before any job.

:func:`read_cohort_table` is how every stage reads these tables: eids canonical (through
``read_any``: :mod:`cardiopheno.io.eids`) and exact duplicate rows dropped, so a row given twice
counts once everywhere. The check functions return ``(problems, warnings)``: lists of lines that
name the file, the column, the values and their lines (line numbers of a CSV with a header: the
first row is line 2). Problems stop the run; warnings are what is probably a mistake but may be
meant.
"""

from __future__ import annotations

import os

import pandas as pd

from cardiopheno.io.eids import zero_padding_groups
from cardiopheno.io.records import as_dates, icd10_codes
from cardiopheno.io.tables import read_any

#: Columns each table must have (the date and code columns of the records).
REQUIRED_COLUMNS = {
    "covariates": ("eid",),
    "diagnoses": ("eid", "icd10", "date"),
    "deaths": ("eid", "date", "icd10"),
}
#: Tables with one row per subject: two different rows for one eid are a conflict.
ONE_ROW_PER_EID = ("covariates",)

Found = tuple[list[str], list[str]]


def read_cohort_table(path: str | os.PathLike) -> pd.DataFrame:
    """A cohort table (CSV or Parquet) as the stages read it: canonical eids, exact duplicate
    rows dropped (the cohort check warns about them), index 0..n-1."""
    return read_any(path).drop_duplicates(ignore_index=True)


def lines_of(mask: pd.Series, limit: int = 10) -> str:
    """``2, 5, 9`` (CSV line numbers of the rows where ``mask`` holds), elided past ``limit``."""
    lines = [str(i + 2) for i in mask.index[mask.to_numpy()]]
    more = f" ... ({len(lines)} in all)" if len(lines) > limit else ""
    return ", ".join(lines[:limit]) + more


def values_at(mask: pd.Series, values: pd.Series, limit: int = 5) -> str:
    """``'x' (line 3), 'y' (line 7)`` for the first rows where ``mask`` holds."""
    shown = [f"{v!r} (line {i + 2})" for i, v in zip(mask.index[mask], values[mask], strict=True)]
    more = f" ... ({len(shown)} in all)" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


def eid_findings(table: pd.DataFrame) -> Found:
    """Eids that cannot name a subject: empty, a number that is not whole (``1000001.5``), or
    spellings of one number with different leading zeros (``0001`` and ``1``)."""
    eids = table["eid"].astype(str)
    problems = []
    if (eids == "").any():
        problems.append(f"column eid: empty on line(s) {lines_of(eids == '')}")
    dotted = eids.str.contains(".", regex=False)
    fraction = dotted & eids.where(dotted, "").str.fullmatch(r"\d+\.\d*[1-9]\d*")
    if fraction.any():
        problems.append(f"column eid: not a whole number: {values_at(fraction, eids)}")
    for group in zero_padding_groups(eids[eids != ""]):
        problems.append(
            "column eid: "
            + " and ".join(repr(e) for e in group)
            + " spell one number with different leading zeros (a spreadsheet drops them): "
            "ambiguous; write each id one way"
        )
    return problems, []


def duplicate_findings(table: pd.DataFrame, one_row_per_eid: bool) -> Found:
    """Exact duplicate rows (a warning: they are dropped where the table is read) and, in a
    table of one row per subject, eids on several different rows (a problem naming the eid,
    its lines and the columns that differ)."""
    warnings = []
    exact = table.duplicated(keep="first")
    if exact.any():
        warnings.append(
            f"{int(exact.sum())} exact duplicate row(s) dropped (line(s) {lines_of(exact)})"
        )
    if not one_row_per_eid:
        return [], warnings
    rows = table[~exact]
    clash = rows["eid"].duplicated(keep=False) & (rows["eid"] != "")
    problems = []
    for eid, group in rows[clash].groupby("eid", sort=True):
        differ = [c for c in group.columns if group[c].astype(str).nunique() > 1]
        detail = "; ".join(f"{c}: {' / '.join(map(str, group[c].tolist()))}" for c in differ[:4])
        problems.append(
            f"eid {eid} on lines {' and '.join(str(i + 2) for i in group.index)} with different "
            f"values ({detail}): one row per subject"
        )
    if len(problems) > 10:
        problems = [*problems[:10], f"... {len(problems)} eids with conflicting rows in all"]
    return problems, warnings


def _unusable(values: pd.Series, parse) -> pd.Series:
    """Rows holding text that ``parse`` (``as_dates``, ``icd10_codes``) turns into a missing
    value; each distinct value is parsed once (a hospital table repeats its codes and dates)."""
    text = values.astype("string").str.strip()
    distinct = pd.Series(pd.unique(text.dropna()), dtype="string")
    distinct = distinct[distinct != ""]
    failed = set(distinct[parse(distinct).isna().to_numpy()])
    return text.isin(failed).fillna(False).astype(bool)


def record_findings(table: pd.DataFrame, name: str) -> Found:
    """A records table's (diagnoses or deaths) ``date`` and ``icd10`` columns: a column with
    values none of which can be used (every date unreadable, as ``31/12/2019`` is: dates are
    YYYY-MM-DD; no code of ICD-10 shape) is a problem; some unusable values are a warning (those
    records are left out and counted in results/run_summary/records.csv)."""
    problems, warnings = [], []
    checks = (
        ("date", as_dates, "not a date (YYYY-MM-DD)"),
        ("icd10", icd10_codes, "not an ICD-10 code (a letter, two digits, up to four more)"),
    )
    for column, parse, what in (c for c in checks if c[0] in table.columns):
        bad = _unusable(table[column], parse)
        if bad.any():
            line = f"column {column}: {what}: {values_at(bad, table[column])}"
            present = table[column].astype("string").str.strip().fillna("") != ""
            (problems if bad.sum() == present.sum() else warnings).append(line)
    if name == "deaths" and "eid" in table.columns:
        several = table["eid"].duplicated(keep=False) & ~table.duplicated(keep=False)
        if several.any():
            warnings.append(
                f"{table.loc[several, 'eid'].nunique()} subject(s) with several death records "
                f"(line(s) {lines_of(several)}): the earliest date is used"
            )
    return problems, warnings


def table_findings(table: pd.DataFrame, name: str) -> Found:
    """Everything :mod:`cardiopheno.io.cohort_tables` checks in one table named ``name``
    (covariates, diagnoses or deaths): required columns, eids, duplicates, records' columns."""
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in table.columns]
    if missing:
        return [
            f"missing required column(s): {', '.join(missing)} (has: "
            f"{', '.join(map(str, table.columns)) or 'none'})"
        ], []
    problems, warnings = eid_findings(table)
    for found in (
        duplicate_findings(table, name in ONE_ROW_PER_EID),
        record_findings(table, name) if name != "covariates" else ([], []),
    ):
        problems += found[0]
        warnings += found[1]
    return problems, warnings
