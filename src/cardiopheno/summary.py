"""What happened to every subject: given, segmented, QC-passed, analysed, and why not.

Nothing is silently dropped: each subject in the manifest gets one row saying how far it got and,
where it stopped, the reason recorded by the stage that stopped it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import pandas as pd

from cardiopheno.io.atomic import atomic_path
from cardiopheno.io.cohort_tables import read_cohort_table
from cardiopheno.io.manifest import load_manifest
from cardiopheno.io.records import ISSUE_COLUMNS, log_issues, record_issues
from cardiopheno.io.tables import read_table, write_table
from cardiopheno.stats.outcomes import resolve_end_of_followup

log = logging.getLogger(__name__)

STAGES = ("given", "segmented", "qc_passed", "analysed")


def subject_outcomes(
    manifest: pd.DataFrame,
    segment_status: pd.DataFrame,
    qc: pd.DataFrame,
    covariates: pd.DataFrame,
    required_covariates: tuple[str, ...] = ("age", "sex"),
) -> pd.DataFrame:
    """One row per manifest subject: a flag per stage and the first reason it went no further."""
    out = pd.DataFrame({"eid": manifest["eid"].astype(str)})
    seg = segment_status.assign(eid=segment_status["eid"].astype(str)).set_index("eid")
    q = qc.assign(eid=qc["eid"].astype(str)).set_index("eid")
    cov = covariates.assign(eid=covariates["eid"].astype(str)).set_index("eid")

    out["given"] = True
    out["segmented"] = out["eid"].map(seg["ok"]).eq(True)
    out["qc_passed"] = out["eid"].map(q["qc_pass"]).eq(True) & out["segmented"]
    has_cov = cov[list(required_covariates)].notna().all(axis=1)
    out["analysed"] = out["qc_passed"] & out["eid"].map(has_cov).eq(True)

    def reason(row) -> str:
        eid = row.eid
        if not row.segmented:
            if eid not in seg.index:
                return "segmentation: no status recorded (batch did not run)"
            return f"segmentation: {seg.at[eid, 'reason'] or 'failed'}"
        if not row.qc_passed:
            if eid not in q.index:
                return "qc: no QC row recorded"
            return f"qc: {q.at[eid, 'qc_reasons']}"
        if not row.analysed:
            if eid not in cov.index:
                return "covariates: subject absent from the covariates table"
            missing = [c for c in required_covariates if pd.isna(cov.at[eid, c])]
            return f"covariates: missing {', '.join(missing)}"
        return ""

    out["reason"] = [reason(r) for r in out.itertuples(index=False)]
    return out


def stage_counts(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Counts per stage with the number lost since the previous stage and the commonest reasons."""
    rows = []
    previous = None
    for stage in STAGES:
        n = int(outcomes[stage].sum())
        lost = (
            outcomes[~outcomes[stage]]
            if previous is None
            else outcomes[outcomes[previous] & ~outcomes[stage]]
        )
        # Group reasons by their first clause so "qc: a; b" and "qc: a" count together.
        top = lost["reason"].str.split(";").str[0].value_counts().head(5)
        rows.append(
            {
                "stage": stage,
                "n": n,
                "lost": 0 if previous is None else int(len(lost)),
                "top_reasons": "; ".join(f"{r} ({c})" for r, c in top.items()),
            }
        )
        previous = stage
    return pd.DataFrame(rows)


def records_summary(
    diagnoses: pd.DataFrame,
    deaths: pd.DataFrame,
    configured_end: str | None = None,
    today: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The end of follow-up the survival stage uses (first row) and what the diagnosis and death
    records lose, by kind (:func:`cardiopheno.io.records.record_issues`): ``table, issue, n,
    examples``. Each issue is also logged as a WARNING."""
    end = resolve_end_of_followup(diagnoses, deaths, configured_end, today)
    rows = [
        pd.DataFrame(
            [("survival", "end of follow-up", len(end.ignored), end.describe())],
            columns=list(ISSUE_COLUMNS),
        ),
        record_issues(diagnoses, "diagnoses", today),
        record_issues(deaths, "deaths", today),
    ]
    out = pd.concat(rows, ignore_index=True)
    log_issues(out.iloc[1:])
    log.info("end of follow-up %s", end.describe())
    return out


def write_run_summary(
    manifest: str | os.PathLike,
    segment_tables: Sequence[str | os.PathLike],
    qc: str | os.PathLike,
    covariates: str | os.PathLike,
    subjects_out: str | os.PathLike,
    counts_out: str | os.PathLike,
    config: Mapping | None = None,
    diagnoses: str | os.PathLike | None = None,
    deaths: str | os.PathLike | None = None,
    records_out: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Read the stage tables, write the per-subject Parquet and the counts CSV; return the counts.

    With ``diagnoses``, ``deaths`` and ``records_out``, also write :func:`records_summary` (the
    end of follow-up used, from ``config``'s ``survival.end_of_followup`` or the derived rule,
    and the records left out by kind) as CSV.
    """
    segment = pd.concat([read_table(p) for p in segment_tables], ignore_index=True)
    outcomes = subject_outcomes(
        load_manifest(manifest, check_files=False),
        segment,
        read_table(qc),
        read_cohort_table(covariates),
    )
    write_table(outcomes, subjects_out, config=config)
    counts = stage_counts(outcomes)
    with atomic_path(counts_out) as tmp:
        counts.to_csv(tmp, index=False)
    log.info("run summary\n%s", counts.to_string(index=False))
    if records_out is not None:
        configured = ((config or {}).get("survival") or {}).get("end_of_followup")
        records = records_summary(
            read_cohort_table(diagnoses), read_cohort_table(deaths), configured
        )
        with atomic_path(records_out) as tmp:
            records.to_csv(tmp, index=False)
    return counts
