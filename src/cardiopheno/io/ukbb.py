"""UK Biobank showcase-style tables (``eid`` plus ``FIELD-INSTANCE.ARRAY`` columns) to the cohort layout.

``ukbb_to_cohort_tables(showcase_csv, field_map)`` returns the covariates, diagnoses and deaths
tables of docs/data-contracts.md. The field map (config ``inputs.ukbb``) names, for each output column, the
showcase columns to read; ``*`` matches any array index (``4080-2.*`` = every automated systolic
reading at the imaging visit). Conventions:

- numeric values: UK Biobank's negative special codes (-1 do not know, -3 prefer not to answer,
  -818, -121, ...) become missing; none of the mapped quantities can be negative;
- several columns for one quantity are averaged (blood pressure is the mean of the available
  automated readings), and ``fallbacks`` fill what the primary columns leave missing (manual
  readings ``93-2.*`` / ``94-2.*``);
- ``central_pp`` is field 12678, "central pulse pressure during PWA" (Vicorder), the mean of
  ``12678-2.0`` and ``12678-2.1`` as ukbb_cardiac's aortic/eval_aortic_area.py takes it; the
  aortic distensibility divides by it (values under 10 mmHg are discarded there, not here);
- dates are ISO ``YYYY-MM-DD``; UK Biobank's placeholder dates (1900-01-01, 1901-01-01, 1902-02-02,
  1903-03-03, 2037-07-07) become missing;
- ICD-10 codes are written in UK Biobank's undotted upper-case form (``I500``, ``I10``, ``E119``):
  dots, spaces and any trailing description (``I50.0 Congestive heart failure``) are removed. That is
  the format of docs/data-contracts.md's ``icd10`` columns throughout the project.

Only the needed columns are read (``usecols``), so a main dataset with thousands of columns is fine.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cardiopheno.io.atomic import atomic_path
from cardiopheno.io.records import ICD10_SHAPE

log = logging.getLogger(__name__)

DEFAULT_FIELD_MAP: dict = {
    "eid_column": "eid",
    "covariates": {
        "age": ["21003-2.0"],
        "sex": ["31-0.0"],
        "height_cm": ["50-2.0"],
        "weight_kg": ["21002-2.0"],
        "sbp": ["4080-2.*"],
        "dbp": ["4079-2.*"],
        "heart_rate": ["102-2.*"],
        "imaging_date": ["53-2.0"],
        "central_pp": ["12678-2.0", "12678-2.1"],
    },
    "fallbacks": {"sbp": ["93-2.*"], "dbp": ["94-2.*"]},
    "date_columns": ["imaging_date"],
    "diagnoses": {"icd10": ["41270-0.*"], "date": ["41280-0.*"]},
    "deaths": {"date": ["40000-0.0", "40000-1.0"], "icd10": ["40001-0.0", "40001-1.0"]},
    "missing_dates": ["1900-01-01", "1901-01-01", "1902-02-02", "1903-03-03", "2037-07-07"],
}

COVARIATE_COLUMNS = (
    "eid", "age", "sex", "height_cm", "weight_kg", "sbp", "dbp", "heart_rate", "imaging_date",
    "central_pp",
)  # fmt: skip


class UKBiobankTableError(ValueError):
    """The showcase table lacks what the field map asks for; the message names the fields."""


def merge_field_map(field_map: Mapping | None) -> dict:
    """The default field map updated one level deep by ``field_map`` (config ``inputs.ukbb``)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULT_FIELD_MAP.items()}
    for key, value in (field_map or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


def _as_list(patterns: str | Sequence[str] | None) -> list[str]:
    if patterns is None:
        return []
    return [patterns] if isinstance(patterns, str) else list(patterns)


def _array_index(column: str) -> tuple:
    tail = column.rsplit(".", 1)[-1]
    return (int(tail), column) if tail.isdigit() else (1 << 30, column)


def _match(columns: Sequence[str], patterns: str | Sequence[str] | None) -> list[str]:
    """Columns matching any pattern (fnmatch), in pattern order then array-index order."""
    out: list[str] = []
    for pattern in _as_list(patterns):
        hits = sorted((c for c in columns if fnmatch.fnmatchcase(c, pattern)), key=_array_index)
        out.extend(h for h in hits if h not in out)
    return out


def normalise_icd10(code: object) -> str:
    """UK Biobank's undotted upper-case ICD-10 (``I50.0`` -> ``I500``); "" when not a code
    (:data:`cardiopheno.io.records.ICD10_SHAPE`: ``12345`` and ``I50..0`` are not)."""
    if code is None or (isinstance(code, float) and np.isnan(code)):
        return ""
    text = str(code).strip().upper()
    if not text:
        return ""
    text = text.split()[0]
    return text.replace(".", "") if ICD10_SHAPE.fullmatch(text) else ""


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    values = frame.apply(pd.to_numeric, errors="coerce")
    return values.mask(values < 0)  # UK Biobank special codes are negative


def _dates(frame: pd.DataFrame, missing_dates: Sequence[str]) -> pd.DataFrame:
    out = frame.apply(lambda s: pd.to_datetime(s, errors="coerce", format="mixed"))
    placeholders = pd.to_datetime(list(missing_dates)) if missing_dates else []
    return out.mask(out.isin(placeholders))


def _first_valid(frame: pd.DataFrame) -> pd.Series:
    if frame.shape[1] == 0:
        return pd.Series(pd.NaT, index=frame.index)
    return frame.bfill(axis=1).iloc[:, 0]


def read_showcase(path: str | os.PathLike, field_map: Mapping) -> pd.DataFrame:
    """Read only the columns the field map needs, all as strings (``eid`` included)."""
    path = Path(path)
    fm = merge_field_map(field_map)
    header = pd.read_csv(path, nrows=0).columns.astype(str).tolist()
    eid_col = fm["eid_column"]
    if eid_col not in header:
        raise UKBiobankTableError(f"{path}: no '{eid_col}' column (first columns: {header[:5]})")
    patterns = [p for v in fm["covariates"].values() for p in _as_list(v)]
    patterns += [p for v in fm.get("fallbacks", {}).values() for p in _as_list(v)]
    patterns += [p for v in fm["diagnoses"].values() for p in _as_list(v)]
    patterns += [p for v in fm["deaths"].values() for p in _as_list(v)]
    wanted = {eid_col, *_match(header, patterns)}
    df = pd.read_csv(path, usecols=lambda c: c in wanted, dtype=str, keep_default_na=True)
    return df.rename(columns={eid_col: "eid"})


def ukbb_to_cohort_tables(
    showcase: str | os.PathLike | pd.DataFrame, field_map: Mapping | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(covariates, diagnoses, deaths) in the cohort layout from a showcase-style table."""
    fm = merge_field_map(field_map)
    if isinstance(showcase, pd.DataFrame):
        df = showcase.rename(columns={fm["eid_column"]: "eid"}).astype(
            {c: str for c in showcase.columns if c != fm["eid_column"]}
        )
        df = df.mask(df.isin(["nan", "None"]))
    else:
        df = read_showcase(showcase, fm)
    df["eid"] = df["eid"].astype(str).str.strip()
    columns = df.columns.tolist()
    date_cols = set(fm.get("date_columns", []))
    missing_dates = fm.get("missing_dates", [])

    covariates = pd.DataFrame({"eid": df["eid"]})
    absent = []
    for name, patterns in fm["covariates"].items():
        cols = _match(columns, patterns)
        if name in date_cols:
            covariates[name] = _first_valid(_dates(df[cols], missing_dates))
        else:
            value = _numeric(df[cols]).mean(axis=1) if cols else pd.Series(np.nan, index=df.index)
            fallback = _match(columns, fm.get("fallbacks", {}).get(name))
            if fallback:
                value = value.fillna(_numeric(df[fallback]).mean(axis=1))
            covariates[name] = value
        if not cols:
            absent.append(f"{name} ({', '.join(_as_list(patterns))})")
    if absent:
        log.warning("showcase table lacks columns for: %s; left missing", "; ".join(absent))
    if "sex" in covariates:
        sex = covariates["sex"].where(covariates["sex"].isin([0, 1]))
        covariates["sex"] = sex.astype("Int64")

    diagnoses = _diagnoses(df, fm, missing_dates)
    deaths = _deaths(df, fm, missing_dates)
    log.info(
        "UK Biobank tables: %d participants, %d diagnoses, %d deaths",
        len(covariates),
        len(diagnoses),
        len(deaths),
    )
    return covariates.reset_index(drop=True), diagnoses, deaths


def _diagnoses(df: pd.DataFrame, fm: Mapping, missing_dates: Sequence[str]) -> pd.DataFrame:
    columns = df.columns.tolist()
    code_cols = _match(columns, fm["diagnoses"]["icd10"])
    date_cols = {_array_index(c)[0]: c for c in _match(columns, fm["diagnoses"].get("date"))}
    parts = []
    for col in code_cols:
        idx = _array_index(col)[0]
        part = pd.DataFrame({"eid": df["eid"], "icd10": df[col].map(normalise_icd10)})
        if idx in date_cols:
            part["date"] = _dates(df[[date_cols[idx]]], missing_dates).iloc[:, 0]
        else:
            part["date"] = pd.NaT
        parts.append(part[part["icd10"] != ""])
    raw = sum(int(df[c].notna().sum()) for c in code_cols)
    if not parts:
        return pd.DataFrame({"eid": pd.Series(dtype=str), "icd10": pd.Series(dtype=str),
                             "date": pd.Series(dtype="datetime64[ns]")})  # fmt: skip
    out = pd.concat(parts, ignore_index=True)
    if raw > len(out):
        log.warning("%d ICD-10 entries were not valid codes and were dropped", raw - len(out))
    out = out.drop_duplicates(["eid", "icd10", "date"])
    return out.sort_values(["eid", "date", "icd10"], na_position="last").reset_index(drop=True)


def _deaths(df: pd.DataFrame, fm: Mapping, missing_dates: Sequence[str]) -> pd.DataFrame:
    columns = df.columns.tolist()
    dates = _first_valid(_dates(df[_match(columns, fm["deaths"]["date"])], missing_dates))
    cause_cols = _match(columns, fm["deaths"].get("icd10"))
    causes = df[cause_cols].apply(lambda s: s.map(normalise_icd10)).replace("", np.nan)
    cause = _first_valid(causes).fillna("") if cause_cols else pd.Series("", index=df.index)
    out = pd.DataFrame(
        {"eid": df["eid"], "date": pd.to_datetime(dates), "icd10": cause.astype(str)}
    )
    keep = out["date"].notna() | (out["icd10"] != "")
    return out[keep].reset_index(drop=True)


def write_cohort_tables(
    covariates: pd.DataFrame,
    diagnoses: pd.DataFrame,
    deaths: pd.DataFrame,
    out_dir: str | os.PathLike,
) -> dict[str, Path]:
    """Write covariates.csv, diagnoses.csv and deaths.csv (dates ISO, atomically)."""
    out_dir = Path(out_dir)
    paths = {}
    for name, table in (("covariates", covariates), ("diagnoses", diagnoses), ("deaths", deaths)):
        table = table.copy()
        for col in table.columns:
            if pd.api.types.is_datetime64_any_dtype(table[col]):
                table[col] = table[col].dt.strftime("%Y-%m-%d")
        path = out_dir / f"{name}.csv"
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
        paths[name] = path
    return paths
