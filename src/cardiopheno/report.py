"""The report's first page: what happened to the cohort, in reStructuredText.

``snakemake --report`` shows the workflow description (``workflow/report/workflow.rst``) on its
landing page; that description includes the overview written here, so a reader first sees how
many subjects were given, segmented, QC-passed and analysed, why subjects failed QC, the
cohort's key phenotypes by sex, a subgroup audit (QC failure rate by sex and age band, key
phenotypes by age band: :mod:`cardiopheno.stats.subgroups`) and links to the headline figures. Link targets are the report
items' file names, which Snakemake defines for every item (``manhattan.png`` -> its result page).
``metadata.yaml`` (for ``--report-metadata``) holds the headline counts; a report made with it
opens on this page, with the rule graph under "Workflow".
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import yaml

from cardiopheno.io.atomic import atomic_path
from cardiopheno.io.cohort_tables import read_cohort_table
from cardiopheno.io.tables import column_specs, read_any
from cardiopheno.qc.checks import ALL_CHECKS, DESCRIPTIONS
from cardiopheno.stats.pipeline import load_frame
from cardiopheno.stats.subgroups import age_bands, by_group, qc_failure_by_group, spread

log = logging.getLogger(__name__)
PathLike = str | os.PathLike
STAGE_NAMES = {
    "given": "given",
    "segmented": "segmented",
    "qc_passed": "QC passed",
    "analysed": "analysed",
}


def escape(text: object) -> str:
    """``text`` as literal reStructuredText inline text (markup characters escaped)."""
    return re.sub(r"([\\`*_|<>\[\]])", r"\\\1", " ".join(str(text).split()))


def list_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A reStructuredText list-table (cells escaped)."""
    lines = [f".. list-table:: {escape(title)}", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines += [f"   {'*' if i == 0 else ' '} - {escape(c)}" for i, c in enumerate(row)]
    return "\n".join(lines) + "\n"


def qc_failures(qc: pd.DataFrame) -> pd.DataFrame:
    """Subjects failing each QC check (a subject can fail several), commonest first; checks that
    could not run (null) are not failures. Columns ``check, failed, meaning``."""
    checks = [*ALL_CHECKS, *(c for c in DESCRIPTIONS if c not in ALL_CHECKS)]
    rows = [
        {"check": c, "failed": int(qc[c].eq(False).sum()), "meaning": DESCRIPTIONS.get(c, "")}
        for c in checks
        if c in qc.columns
    ]
    out = pd.DataFrame(rows, columns=["check", "failed", "meaning"])
    return out[out["failed"] > 0].sort_values("failed", ascending=False, kind="stable")


def phenotype_summary(
    frame: pd.DataFrame, idps: Sequence[str], units: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Median and interquartile range of each IDP by sex (``frame``: analysed subjects, ``sex``
    0 female, 1 male). Columns ``idp, unit, sex, n, median, q1, q3``; IDPs not in ``frame`` are
    left out."""
    rows = []
    for idp in (i for i in idps if i in frame.columns):
        for sex, name in ((0, "women"), (1, "men")):
            x = frame.loc[frame["sex"] == sex, idp].dropna()
            rows.append(
                {"idp": idp, "unit": (units or {}).get(idp, ""), "sex": name, "n": len(x),
                 "median": x.median(), "q1": x.quantile(0.25), "q3": x.quantile(0.75)}
            )  # fmt: skip
    return pd.DataFrame(rows, columns=["idp", "unit", "sex", "n", "median", "q1", "q3"])


def _median_iqr(r, n_header: int) -> str:
    if r.n == 0:
        return "-"
    n = "" if r.n == n_header else f", n = {r.n:,}"
    return f"{r.median:.3g} ({r.q1:.3g}-{r.q3:.3g}){n}"


def phenotype_table(summary: pd.DataFrame) -> str:
    """:func:`phenotype_summary` as a list-table, one row per IDP; the header gives each sex's
    largest n, and a cell its own n where it has fewer."""
    n_header = summary.groupby("sex")["n"].max()
    cells: dict[str, dict[str, str]] = {}
    for r in summary.itertuples():
        name = f"{r.idp} ({r.unit})" if r.unit else r.idp
        cells.setdefault(name, {})[r.sex] = _median_iqr(r, n_header[r.sex])
    return list_table(
        "Key phenotypes of the analysed subjects: median (interquartile range)",
        ["phenotype", *(f"{sex} (n = {n_header.get(sex, 0):,})" for sex in ("women", "men"))],
        [(name, v.get("women", "-"), v.get("men", "-")) for name, v in cells.items()],
    )


#: groups smaller than this are shown but left out of the gap between groups
AUDIT_MIN_N = 5


def subgroup_audit_rst(
    qc: pd.DataFrame,
    covariates: pd.DataFrame,
    frame: pd.DataFrame,
    idps: Sequence[str],
    units: Mapping[str, str] | None = None,
) -> str:
    """The report's subgroup audit: QC failure rate by sex and by 10-year age band over every
    subject QC saw, with the gap between the best and worst group (groups of at least
    ``AUDIT_MIN_N``), and the median of each key phenotype by age band among the analysed
    subjects (``frame``; by sex it is in the key-phenotypes table)."""
    parts = []
    tables = qc_failure_by_group(qc, covariates)
    rows, gaps = [], []
    for name, t in tables.items():
        rows += [(name, r.group, r.n, r.failed, f"{r.rate_pct:.1f}") for r in t.itertuples()]
        gap = spread(t, ["rate_pct"], min_n=AUDIT_MIN_N)["rate_pct"]
        gaps.append(f"{name} {gap:.1f}" if gap == gap else f"{name} -")
    parts.append(
        list_table(
            "Subgroup audit: quality-control failure rate by group (largest gap between groups "
            f"of >= {AUDIT_MIN_N} subjects, percentage points: {', '.join(gaps)})",
            ["by", "group", "subjects", "failing QC", "rate (%)"],
            rows,
        )
    )
    present = [i for i in idps if i in frame.columns]
    if present and "age" in frame.columns and len(frame):
        bands = frame.assign(age_band=age_bands(frame["age"]))
        t = by_group(bands, "age_band", present, "median")
        gap = spread(t, present, min_n=AUDIT_MIN_N)
        header = ["phenotype", *(f"{r.age_band} (n = {r.n:,})" for r in t.itertuples())]
        body = []
        for idp in present:
            name = f"{idp} ({units[idp]})" if units and units.get(idp) else idp
            body.append((name, *(f"{v:.3g}" for v in t[idp]), f"{gap[idp]:.3g}"))
        parts.append(
            list_table(
                "Key phenotypes of the analysed subjects by age band: median (gap: largest minus "
                f"smallest median over bands of >= {AUDIT_MIN_N} subjects)",
                [*header, "gap"],
                body,
            )
        )
    return "\n\n".join(parts)


def door_rst(tables: pd.DataFrame, left_out: pd.DataFrame) -> str:
    """The door's findings before any job (:mod:`cardiopheno.cohort_check`): each input table's
    rows and subjects against the manifest, and the manifest subjects left out by reason."""
    parts = [
        list_table(
            "Input tables at the door (results/run_summary/door.csv)",
            [
                "table",
                "rows",
                "subjects",
                "of the manifest's",
                "not in the manifest",
                "exact duplicate rows dropped",
            ],
            [
                (
                    r.table,
                    r.rows,
                    r.subjects,
                    r.manifest_subjects_covered,
                    r.subjects_not_in_manifest,
                    r.exact_duplicates_dropped,
                )
                for r in tables.itertuples()
            ],
        )
    ]
    if len(left_out):
        reasons = left_out["reason"].value_counts()
        parts.append(
            list_table(
                f"{len(left_out):,} manifest subjects will not be analysed "
                "(results/run_summary/door_subjects.csv lists them)",
                ["reason", "subjects"],
                reasons.items(),
            )
        )
    return "\n\n".join(parts)


def overview_rst(
    counts: pd.DataFrame | None,
    qc: pd.DataFrame,
    summary: pd.DataFrame,
    figures: Mapping[str, PathLike],
    n_given: int | None = None,
    audit: str = "",
    door: str = "",
) -> str:
    """The landing page's text. ``counts``: the run summary (``stage, n, lost, top_reasons``),
    or None for a cohort given as tables (then ``n_given`` subjects); ``figures``: link text ->
    report item path (linked by file name); ``door``: :func:`door_rst`'s text, after the
    counts."""
    parts = []
    if counts is not None:
        n = counts.set_index("stage")["n"]
        parts.append(
            f"**{n.get('given', 0):,}** subjects given, **{n.get('segmented', 0):,}** segmented, "
            f"**{n.get('qc_passed', 0):,}** passed quality control and "
            f"**{n.get('analysed', 0):,}** were analysed (QC passed, age and sex known)."
        )
        parts.append(
            list_table(
                "Subjects at each step (run summary)",
                ["step", "subjects", "lost", "commonest reasons"],
                [
                    (STAGE_NAMES.get(r.stage, r.stage), r.n, r.lost, r.top_reasons or "")
                    for r in counts.fillna({"top_reasons": ""}).itertuples()
                ],
            )
        )
        if door:
            parts.append(door)
    else:
        parts.append(
            f"**{n_given:,}** subjects given as tables (phenotypes without images: the "
            "segmentation and quality-control stages did not run), "
            f"**{int(qc['qc_pass'].sum()):,}** marked as passing quality control."
        )
    fails = qc_failures(qc)
    if len(fails):
        parts.append(
            list_table(
                f"Quality-control failures: {int((~qc['qc_pass'].astype(bool)).sum()):,} of "
                f"{len(qc):,} subjects fail at least one check",
                ["check", "subjects failing", "what it checks"],
                fails.itertuples(index=False),
            )
        )
    else:
        parts.append(f"No subject failed a quality-control check ({len(qc):,} checked).")
    if len(summary):
        parts.append(phenotype_table(summary))
    if audit:
        parts.append(audit)
    if figures:
        lines = ["**Headline figures** (the rule graph is under Workflow):", ""]
        lines += [f"- `{escape(text)} <{Path(p).name}_>`_" for text, p in figures.items()]
        parts.append("\n".join(lines) + "\n")
    return "\n\n".join(parts) + "\n"


def write_overview(
    qc: PathLike,
    phenotypes: PathLike,
    covariates: PathLike,
    out_rst: PathLike,
    out_metadata: PathLike,
    idps: Sequence[str],
    figures: Mapping[str, PathLike],
    counts: PathLike | None = None,
    door: tuple[PathLike, PathLike] | None = None,
) -> str:
    """Write the landing page's text (``out_rst``) and headline counts (``out_metadata``, YAML
    for ``snakemake --report-metadata``); returns the text. ``door``: the door's ``door.csv``
    and ``door_subjects.csv`` of a manifest cohort."""
    qc_t = read_any(qc)
    frame = load_frame(phenotypes, qc, covariates)
    units = (
        {k: v.unit for k, v in column_specs(phenotypes).items()}
        if str(phenotypes).endswith(".parquet")
        else {}
    )
    counts_t = pd.read_csv(counts) if counts else None
    summary = phenotype_summary(frame, idps, units)
    audit = subgroup_audit_rst(qc_t, read_cohort_table(covariates), frame, idps, units)
    door_text = door_rst(*(pd.read_csv(p, dtype={"eid": str}) for p in door)) if door else ""
    text = overview_rst(
        counts_t, qc_t, summary, figures, n_given=len(qc_t), audit=audit, door=door_text
    )
    if counts_t is not None:
        n = counts_t.set_index("stage")["n"]
        meta = {"Subjects given": int(n["given"]), "Subjects analysed": int(n["analysed"])}
    else:
        meta = {"Subjects given": len(qc_t), "Subjects analysed": len(frame)}
    with atomic_path(out_rst) as tmp:
        Path(tmp).write_text(text)
    with atomic_path(out_metadata) as tmp:
        Path(tmp).write_text(yaml.safe_dump(meta, sort_keys=False))
    log.info("report overview: %s", meta)
    return text
