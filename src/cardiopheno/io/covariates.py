"""The covariates table: checked before any job runs, and its sex coding normalised where read.

:func:`check_covariates` looks at every column the config uses (``age``, ``sex``,
``imaging_date`` and the analysis sections' covariates) and raises one :class:`CovariatesError`
naming the file, each bad column, the offending values and their rows (line numbers of the CSV:
the header is line 1). :func:`sex_codes` is the one place a sex coding becomes 0 (female) / 1
(male): 0/1 as numbers or text, M/F, or male/female, case-insensitive; a column mixing numeric
and letter codings, or holding any other value, is refused as ambiguous.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cardiopheno.errors import ProblemsError
from cardiopheno.io.contract import covariate_ranges
from cardiopheno.io.records import as_dates
from cardiopheno.io.tables import read_any

log = logging.getLogger(__name__)

#: Impossible ages (years at imaging) are outside this range (the input contract's).
AGE_RANGE = (covariate_ranges()["age"].lo, covariate_ranges()["age"].hi)
#: Text sex codes (case-insensitive) and what they mean; numbers must be 0 (female) or 1 (male).
SEX_WORDS = {"f": 0.0, "female": 0.0, "m": 1.0, "male": 1.0}
#: Columns the covariate checks read as dates.
DATE_COLUMNS = ("imaging_date",)
#: Derived covariates: name -> the columns it is computed from (cardiopheno.stats.data).
DERIVED = {"bsa_m2": ("height_cm", "weight_kg")}


class CovariatesError(ProblemsError):
    """A covariates table with problems; ``problems`` lists each one as a readable line."""

    def __init__(self, path: str | os.PathLike, problems: list[str]):
        self.path = Path(path)
        super().__init__(f"covariates {path}", problems)


def _rows(mask: pd.Series, values: pd.Series, limit: int = 5) -> str:
    """``'M' (line 3), ...`` for the first offending values, with a count when there are more."""
    bad = [f"{v!r} (line {i + 2})" for i, v in zip(mask.index[mask], values[mask], strict=True)]
    more = f" ... ({len(bad)} in all)" if len(bad) > limit else ""
    return ", ".join(bad[:limit]) + more


def _sex_parts(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(codes 0/1/NaN, rows holding a number, rows holding a word) of a sex column."""
    text = values.astype("string").str.strip().str.lower()
    text = text.mask(text == "")
    numbers = pd.to_numeric(text, errors="coerce")
    words = text.map(SEX_WORDS, na_action="ignore").astype(float)
    codes = numbers.where(numbers.isin([0.0, 1.0])).astype(float).fillna(words)
    return codes, numbers.notna(), words.notna()


def sex_problem(values: pd.Series) -> str:
    """Why a sex column cannot be mapped to 0/1 unambiguously, or "" when it can."""
    codes, is_number, is_word = _sex_parts(values)
    present = values.notna() & (values.astype("string").str.strip() != "")
    bad = present & codes.isna()
    if bad.any():
        return f"values that are not a sex code (0/1, M/F, male/female): {_rows(bad, values)}"
    if is_number.any() and is_word.any():
        return (
            "mixes numeric (0/1) and letter (M/F, male/female) codes, so the mapping is "
            f"ambiguous: {_rows(is_number, values, 2)} and {_rows(is_word, values, 2)}"
        )
    return ""


def sex_codes(values: pd.Series) -> pd.Series:
    """Sex as float 0 (female) / 1 (male), NaN where missing; ``ValueError`` when ambiguous."""
    problem = sex_problem(values)
    if problem:
        raise ValueError(f"sex column {problem}")
    return _sex_parts(values)[0]


def covariate_columns(config: dict) -> list[str]:
    """Covariate columns a config uses: age, sex, imaging_date and each analysis's covariates
    (a derived one, ``bsa_m2``, stands for the columns it is computed from when absent)."""
    columns = ["age", "sex", "imaging_date"]
    for section in ("association", "phewas", "survival"):
        columns += list((config.get(section) or {}).get("covariates") or [])
    return list(dict.fromkeys(columns))


def check_covariates(
    table: pd.DataFrame,
    path: str | os.PathLike,
    columns: Sequence[str],
    today: pd.Timestamp | None = None,
    age_range: tuple[float, float] = AGE_RANGE,
) -> pd.DataFrame:
    """Check the covariates ``table`` (read from ``path``) for the ``columns`` a config uses.

    Problems, all listed in one :class:`CovariatesError`: a column absent (a derived one needs
    its source columns); a column with no value at all; ``sex`` not unambiguously 0/1, M/F or
    male/female; a numeric column holding text; ``age`` outside ``age_range``; a date column
    holding text that is not a date, or a date after ``today`` (the run date). Missing values
    are allowed (those subjects are not analysed, and the run summary says so). Returns
    ``table`` unchanged.
    """
    today = pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today)
    problems: list[str] = []
    if "eid" not in table.columns:
        problems.append("no eid column")
    for col in columns:
        if col not in table.columns:
            sources = DERIVED.get(col)
            if sources and all(c in table.columns for c in sources):
                continue
            via = f" (nor {' and '.join(sources)} to derive it from)" if sources else ""
            problems.append(f"column {col}: absent{via}")
            continue
        values = table[col]
        text = values.astype("string").str.strip()
        present = values.notna() & (text != "")
        if not present.any():
            problems.append(f"column {col}: no values at all")
            continue
        if not present.all():
            lines = [str(i + 2) for i in table.index[~present]]
            log.warning(
                "covariates %s: column %s is empty on %d of %d rows (lines %s%s): those subjects "
                "are not analysed",
                path,
                col,
                len(lines),
                len(table),
                ", ".join(lines[:10]),
                " ..." if len(lines) > 10 else "",
            )
        if col == "sex":
            problem = sex_problem(values)
        elif col in DATE_COLUMNS:
            dates = as_dates(values)
            unreadable = present & dates.isna()
            future = dates > today
            problem = "; ".join(
                p
                for p in (
                    f"not dates: {_rows(unreadable, values)}" if unreadable.any() else "",
                    f"after the run date {today:%Y-%m-%d}: {_rows(future, values)}"
                    if future.any()
                    else "",
                )
                if p
            )
        else:
            numbers = pd.to_numeric(values, errors="coerce")
            text_values = present & numbers.isna()
            problem = f"not numbers: {_rows(text_values, values)}" if text_values.any() else ""
            if not problem and col == "age":
                lo, hi = age_range
                out = (numbers < lo) | (numbers > hi) | ~np.isfinite(numbers.fillna(lo))
                if out.any():
                    problem = f"ages outside [{lo:g}, {hi:g}] years: {_rows(out, values)}"
        if problem:
            problems.append(f"column {col}: {problem}")
    if problems:
        raise CovariatesError(path, problems)
    return table


def check_covariates_file(
    path: str | os.PathLike, columns: Iterable[str], today: pd.Timestamp | None = None
) -> pd.DataFrame:
    """:func:`check_covariates` on the table at ``path`` (CSV or Parquet); returns the table."""
    if not Path(path).is_file():
        raise CovariatesError(path, [f"file not found: {path}"])
    try:
        table = read_any(path)
    except Exception as exc:
        raise CovariatesError(path, [f"cannot be read as a table: {exc}"]) from exc
    return check_covariates(table, path, list(columns), today)
