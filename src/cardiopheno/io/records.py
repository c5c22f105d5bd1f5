"""Diagnosis and death records: ICD-10 codes of the right shape, readable dates, and what is not.

A code is used only when it has the shape of an ICD-10 code (a letter, two digits, then up to four
letters or digits, with at most one dot, right after the third character: ``I50``, ``I50.0``,
``i500``, ``E11.9``, ``A09X``); anything else (``XYZ``, ``12345``, ``I50..0``) is left out and
counted, never reinterpreted. :func:`record_issues` counts what a table loses, by kind, with a few
examples each; the stages that read the tables log them as WARNINGs and the run summary lists them
(``results/run_summary/records.csv``).
"""

from __future__ import annotations

import logging
import re

import pandas as pd

log = logging.getLogger(__name__)

ICD10_SHAPE = re.compile(r"[A-Z][0-9]{2}(?:\.?[0-9A-Z]{1,4})?")

#: Columns of :func:`record_issues`.
ISSUE_COLUMNS = ("table", "issue", "n", "examples")


def as_dates(values) -> pd.Series:
    """Dates as ``datetime64[ns]`` whatever they arrive as (ISO strings, ``datetime.date``,
    Timestamps, datetime64 of another unit, all missing, or no rows at all); unparseable values
    become NaT. Every date of the statistics goes through here, so date arithmetic never mixes an
    object column with a datetime one."""
    out = pd.to_datetime(pd.Series(values), errors="coerce", format="ISO8601")
    if isinstance(out.dtype, pd.DatetimeTZDtype):
        out = out.dt.tz_localize(None)
    return out.astype("datetime64[ns]")


def _text(values) -> pd.Series:
    """Values as stripped strings, <NA> where missing or empty."""
    text = pd.Series(values).astype("string").str.strip()
    return text.mask(text == "")


def icd10_codes(codes) -> pd.Series:
    """Undotted upper-case ICD-10 codes (``I21.4``, ``i214`` -> ``I214``; a trailing filler
    ``X`` dropped: ``A09X`` -> ``A09``); <NA> where the value is empty or not of ICD-10 shape."""
    text = _text(codes).str.upper()
    ok = text.str.fullmatch(ICD10_SHAPE.pattern).fillna(False).astype(bool)
    out = text.str.replace(".", "", regex=False).str.replace(r"X+$", "", regex=True)
    return out.where(ok)


def record_issues(
    table: pd.DataFrame,
    name: str,
    today: pd.Timestamp | None = None,
    n_examples: int = 3,
) -> pd.DataFrame:
    """What ``table`` (diagnoses or deaths: ``eid``, ``icd10``, ``date``) loses, by kind.

    Kinds: ``empty ICD-10 code``, ``malformed ICD-10 code`` (not of ICD-10 shape: left out),
    ``unreadable date`` (text that is not a date: the record cannot be placed in time),
    ``date after the run date`` (after ``today``, default the day of the run: data cannot come
    from the future; such a record never sets the end of follow-up). Returns ``table, issue, n,
    examples`` (examples: a few offending values with their eid), one row per kind that occurs.
    """
    today = pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today)
    eid = table["eid"].astype(str) if "eid" in table.columns else pd.Series("?", index=table.index)
    rows = []

    def add(issue: str, mask: pd.Series, values: pd.Series) -> None:
        n = int(mask.sum())
        if n:
            shown = [f"{v!r} (eid {e})" for v, e in zip(values[mask], eid[mask], strict=True)]
            rows.append((name, issue, n, ", ".join(shown[:n_examples])))

    if "icd10" in table.columns:
        text = _text(table["icd10"])
        add("empty ICD-10 code", text.isna(), text.fillna(""))
        add("malformed ICD-10 code", text.notna() & icd10_codes(text).isna(), text)
    if "date" in table.columns:
        text = _text(table["date"])
        dates = as_dates(table["date"])
        add("unreadable date", text.notna() & dates.isna(), text)
        add("date after the run date", dates > today, dates.dt.strftime("%Y-%m-%d"))
    return pd.DataFrame(rows, columns=list(ISSUE_COLUMNS))


def log_issues(issues: pd.DataFrame) -> None:
    """Log a WARNING per row of a :func:`record_issues` table."""
    for row in issues.itertuples(index=False):
        log.warning("%s: %d record(s) with %s (e.g. %s)", row.table, row.n, row.issue, row.examples)


def warn_record_issues(table: pd.DataFrame, name: str, today: pd.Timestamp | None = None) -> None:
    """Log a WARNING per kind of :func:`record_issues` (records a stage cannot use as given)."""
    log_issues(record_issues(table, name, today))
