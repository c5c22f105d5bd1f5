"""Incident outcomes after imaging, from diagnoses and deaths, for survival analyses.

An outcome is a set of ICD-10 code prefixes (``I50`` matches I50, I50.0, I500) looked up in the
sources it names (``diagnoses``, ``deaths``: the underlying cause), or every death when its codes
are ``["*"]`` and its source is ``deaths``. Rules, per subject:

- time zero is ``imaging_date``; a subject without one is left out (``status = "no imaging date"``);
- a matching diagnosis dated before *or on* the imaging day is prevalent: the subject is left out
  of that outcome (an event on the day of the scan cannot be told from a pre-existing one);
- a matching record without a date cannot be placed in time: the subject is left out
  (``status = "undated event"``);
- otherwise the first matching record after imaging is the event;
- death from anything else censors at the death date (cause-specific hazard), and follow-up ends
  at ``end_of_followup`` (administrative censoring); events after it are not counted;
- a death record without a date leaves the subject out (follow-up unknown).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cardiopheno.io.records import as_dates, icd10_codes, warn_record_issues
from cardiopheno.io.tables import ColumnSpec
from cardiopheno.stats.schema import conform

log = logging.getLogger(__name__)

DAYS_PER_YEAR = 365.25

OUTCOME_COLUMNS: dict[str, ColumnSpec] = {
    "time_years": ColumnSpec("years", "time from imaging to the event or censoring"),
}

#: Columns and dtypes of the outcomes table (also when it has no rows).
OUTCOME_DTYPES: dict[str, str] = {
    "eid": "object", "outcome": "object", "status": "object", "event": "bool",
    "time_years": "float64", "imaging_date": "datetime64[ns]", "event_date": "datetime64[ns]",
    "censor_date": "datetime64[ns]", "death_date": "datetime64[ns]",
}  # fmt: skip


#: Record dates more than this after the 99th centile of all record dates are outliers (a stray
#: record), never the end of follow-up (see :func:`resolve_end_of_followup`).
OUTLIER_MARGIN_DAYS = 365


@dataclass(frozen=True)
class FollowupEnd:
    """The administrative end of follow-up a run used, how it was chosen, and what was ignored."""

    date: pd.Timestamp | None  # None (NaT): unknown (no usable record date)
    rule: str
    ignored: tuple[str, ...] = ()  # record dates left out of the choice, "date (table, eid)"

    def describe(self) -> str:
        text = f"{self.date:%Y-%m-%d}" if self.date is not None else "unknown"
        text += f": {self.rule}"
        if self.ignored:
            shown = ", ".join(self.ignored[:5])
            more = f" ... ({len(self.ignored)} in all)" if len(self.ignored) > 5 else ""
            text += f"; records ignored for it: {shown}{more}"
        return text


def resolve_end_of_followup(
    diagnoses: pd.DataFrame,
    deaths: pd.DataFrame,
    configured: str | pd.Timestamp | None = None,
    today: pd.Timestamp | None = None,
) -> FollowupEnd:
    """The end of follow-up: ``survival.end_of_followup`` when configured, else derived.

    Derived rule: the latest diagnosis or death date that is neither after the run date
    (``today``: data cannot come from the future) nor an outlier, i.e. more than
    :data:`OUTLIER_MARGIN_DAYS` (365) days after the 99th centile of all record dates not after
    the run date. One stray record (a diagnosis dated 2199, or 2025 in data that end in 2022)
    therefore never sets it; ending follow-up a little early only loses follow-up time, it does
    not bias the estimates. Unknown (None) when no record has a date.
    """
    today = pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today)
    if configured is not None:
        date = pd.Timestamp(configured).as_unit("ns")
        if date > today:
            log.warning("survival.end_of_followup %s is after the run date %s", configured, today)
        return FollowupEnd(date, "survival.end_of_followup (configured)")
    records = pd.concat(
        [
            pd.DataFrame({"date": as_dates(t["date"]), "eid": t["eid"].astype(str), "table": n})
            for n, t in (("diagnoses", diagnoses), ("deaths", deaths))
            if "date" in t.columns
        ]
        or [pd.DataFrame({"date": as_dates([]), "eid": [], "table": []})],
        ignore_index=True,
    ).dropna(subset=["date"])
    future = records["date"] > today
    cut = today
    if (~future).any():
        p99 = records.loc[~future, "date"].quantile(0.99)
        cut = min(today, p99 + pd.Timedelta(days=OUTLIER_MARGIN_DAYS))
    used = records["date"] <= cut
    ignored = tuple(
        f"{r.date:%Y-%m-%d} ({r.table}, eid {r.eid})"
        for r in records[~used].sort_values("date", ascending=False).itertuples()
    )
    rule = (
        f"derived: latest diagnosis or death date not after the run date ({today:%Y-%m-%d}) "
        f"and at most {OUTLIER_MARGIN_DAYS} days after the 99th centile of record dates"
    )
    if not used.any():
        return FollowupEnd(None, rule, ignored)
    return FollowupEnd(records.loc[used, "date"].max(), rule, ignored)


@dataclass(frozen=True)
class OutcomeDefinition:
    name: str
    icd10: tuple[str, ...]
    sources: tuple[str, ...] = ("diagnoses", "deaths")
    description: str = ""

    @classmethod
    def from_config(cls, name: str, cfg: Mapping) -> OutcomeDefinition:
        sources = tuple(cfg.get("sources", ("diagnoses", "deaths")))
        bad = set(sources) - {"diagnoses", "deaths"}
        if bad:
            raise ValueError(f"outcome {name!r}: unknown sources {sorted(bad)}")
        codes = tuple(str(c) for c in cfg["icd10"])
        if "*" in codes and sources != ("deaths",):
            raise ValueError(f"outcome {name!r}: '*' (any code) is only allowed for deaths")
        return cls(name, codes, sources, str(cfg.get("description", "")))

    def matches(self, codes: pd.Series) -> pd.Series:
        if "*" in self.icd10:
            return pd.Series(True, index=codes.index)
        prefixes = tuple(c.strip().upper().replace(".", "") for c in self.icd10)
        return icd10_codes(codes).fillna("").str.startswith(prefixes)


def derive_outcomes(
    subjects: pd.DataFrame,
    diagnoses: pd.DataFrame,
    deaths: pd.DataFrame,
    definitions: Sequence[OutcomeDefinition],
    end_of_followup: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One row per subject and outcome: ``eid, outcome, status, event, time_years, ...``.

    ``status`` is "event", "censored" or the reason the subject is left out ("prevalent",
    "undated event", "no imaging date", "undated death", "imaged after end of follow-up",
    "unknown end of follow-up"); only "event" and "censored" rows enter the Cox models.
    ``end_of_followup`` defaults to the rule of :func:`resolve_end_of_followup` (the latest
    record date that is neither in the future nor an outlier; unknown when no record has a
    usable date).
    """
    subj = subjects[["eid", "imaging_date"]].copy()
    subj["eid"] = subj["eid"].astype(str)
    subj["imaging_date"] = as_dates(subj["imaging_date"]).to_numpy()
    diag = diagnoses.assign(
        eid=diagnoses["eid"].astype(str), date=as_dates(diagnoses["date"]).to_numpy()
    )
    dth = deaths.assign(eid=deaths["eid"].astype(str), date=as_dates(deaths["date"]).to_numpy())
    if dth["eid"].duplicated().any():
        log.warning("several death records for some subjects: the earliest is used")
    for name, table in (("diagnoses", diagnoses), ("deaths", deaths)):
        warn_record_issues(table, name)
    end = _logged_end_of_followup(diagnoses, deaths, end_of_followup)
    first_death = dth.sort_values("date", na_position="first").drop_duplicates("eid")
    first_death = first_death.set_index("eid")
    base = subj.set_index("eid")
    death_date = first_death["date"].reindex(base.index)
    has_death_row = base.index.isin(first_death.index)
    rows = []
    for od in definitions:
        rec = _matching_records(od, diag, dth, base)
        df = _outcome_frame(od.name, rec, base, death_date, has_death_row, end)
        rows.append(df.reset_index())
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return conform(out, OUTCOME_DTYPES)


def _logged_end_of_followup(diagnoses, deaths, configured) -> pd.Timestamp:
    """The end of follow-up (:func:`resolve_end_of_followup`), NaT when unknown; logged."""
    followup = resolve_end_of_followup(diagnoses, deaths, configured)
    end = pd.Timestamp(followup.date) if followup.date is not None else pd.NaT
    if followup.date is None:
        log.warning("no usable dated diagnosis or death: follow-up is unknown (%s)", followup.rule)
    else:
        log.info("end of follow-up %s", followup.describe())
    return end


def _matching_records(
    od: OutcomeDefinition, diag: pd.DataFrame, dth: pd.DataFrame, base: pd.DataFrame
) -> pd.DataFrame:
    """``eid, date, imaging_date`` of the records matching the outcome, of the subjects only."""
    records = []
    if "diagnoses" in od.sources and len(diag):
        records.append(diag.loc[od.matches(diag["icd10"]), ["eid", "date"]])
    if "deaths" in od.sources and len(dth):
        records.append(dth.loc[od.matches(dth["icd10"]), ["eid", "date"]])
    # With no source table (say, a cohort without deaths) the records must still have a
    # datetime "date": an object column here made every date below object and the time
    # subtraction fail ("cannot subtract DatetimeArray from ndarray").
    rec = (
        pd.concat(records)
        if records
        else pd.DataFrame({"eid": pd.Series(dtype=object), "date": as_dates([])})
    )
    rec = rec[rec["eid"].isin(base.index)]
    return rec.join(base["imaging_date"], on="eid")


def _outcome_frame(name, rec, base, death_date, has_death_row, end) -> pd.DataFrame:
    """One outcome's rows (indexed by eid): event or censoring date, time and status."""
    undated = set(rec.loc[rec["date"].isna(), "eid"])
    prevalent = set(rec.loc[rec["date"] <= rec["imaging_date"], "eid"])
    after = rec[(rec["date"] > rec["imaging_date"])].groupby("eid")["date"].min()
    df = pd.DataFrame(index=base.index)
    df["outcome"] = name
    df["imaging_date"] = base["imaging_date"]
    df["death_date"] = death_date
    df["event_date"] = as_dates(after.reindex(base.index)).to_numpy()
    # Censoring: death (from another cause) or the end of follow-up, whichever first.
    censor = pd.Series(end, index=base.index, dtype="datetime64[ns]").where(
        death_date.isna() | (death_date > end), death_date
    )
    event = df["event_date"].notna() & (df["event_date"] <= censor)
    stop = df["event_date"].where(event, censor)
    df["event"] = event
    df["censor_date"] = censor
    df["time_years"] = (stop - df["imaging_date"]).dt.days / DAYS_PER_YEAR
    status = np.where(event, "event", "censored").astype(object)
    status[df["imaging_date"].isna().to_numpy()] = "no imaging date"
    status[(has_death_row & death_date.isna()).to_numpy()] = "undated death"
    status[(df["imaging_date"] >= end).to_numpy()] = "imaged after end of follow-up"
    if pd.isna(end):
        status[:] = "unknown end of follow-up"
    status[df.index.isin(undated)] = "undated event"
    status[df.index.isin(prevalent)] = "prevalent"
    df["status"] = status
    df.loc[~df["status"].isin(["event", "censored"]), ["event", "time_years"]] = [False, np.nan]
    return df
