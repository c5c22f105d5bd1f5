"""The door: every cohort table checked and every subject accounted for before the first job.

``workflow/rules/common.smk`` calls :func:`check_cohort` when the workflow is read (so
``snakemake -n`` already fails) on a user's cohort: the manifest (:func:`load_manifest`), the
covariates (:func:`check_covariates` for the columns the config uses, and the input contract's
human ranges, :func:`check_covariates_frame`), the diagnoses and deaths
(:mod:`cardiopheno.io.cohort_tables`: required columns, eids, duplicates, dates, ICD-10 codes),
then the tables against each other: how many manifest subjects each table covers, no shared eid
at all (a problem), a partial overlap, eids of a table missing from the manifest, the same image
under two eids, folders among files (warnings). Every problem of every table is listed in one
:class:`CohortError`, each line naming the table, its file, the column and the values.

:func:`write_door_summary` writes what the run will analyse before any job runs:
``results/run_summary/door.csv`` (one row per table: rows, subjects, manifest subjects it covers,
eids not in the manifest, exact duplicate rows dropped) and ``door_subjects.csv`` (every manifest
subject left out of the analyses already at the door, with why, in the words of the run summary's
``subjects.parquet``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cardiopheno.batching import write_if_changed
from cardiopheno.errors import ProblemsError
from cardiopheno.io.cohort_tables import eid_findings, table_findings
from cardiopheno.io.contract import check_covariates_frame
from cardiopheno.io.covariates import CovariatesError, check_covariates
from cardiopheno.io.eids import number_key
from cardiopheno.io.manifest import (
    IMAGE_COLUMNS,
    ManifestError,
    load_manifest,
)
from cardiopheno.io.tables import read_any
from cardiopheno.views import VIEWS

log = logging.getLogger(__name__)

TABLES = ("covariates", "diagnoses", "deaths")
#: Covariates a subject needs to be analysed (as :func:`cardiopheno.summary.subject_outcomes`).
REQUIRED_COVARIATES = ("age", "sex")
COUNT_COLUMNS = (
    "table",
    "file",
    "rows",
    "subjects",
    "manifest_subjects_covered",
    "subjects_not_in_manifest",
    "exact_duplicates_dropped",
)


class CohortError(ProblemsError):
    """A cohort with problems; ``problems`` lists each one, naming its table and file."""

    def __init__(self, problems: list[str]):
        super().__init__("cohort", problems)


@dataclass
class CohortCheck:
    """What the door found on a cohort that passed it."""

    manifest: pd.DataFrame  # validated, absolute paths
    tables: dict[str, pd.DataFrame]  # as the stages read them: exact duplicate rows dropped
    counts: pd.DataFrame  # COUNT_COLUMNS
    left_out: pd.DataFrame  # eid, reason: manifest subjects that will not be analysed
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line: the manifest's subjects, how many each table covers, how many are left
        out of the analyses and where that is written."""
        covered = ", ".join(
            f"{r.table} rows for {r.manifest_subjects_covered}"
            for r in self.counts.iloc[1:].itertuples()
        )
        return (
            f"cohort: {len(self.manifest)} subjects in the manifest; {covered}; "
            f"{len(self.left_out)} will not be analysed (results/run_summary/door_subjects.csv "
            "says why)"
        )


def _examples(items, limit: int = 5) -> str:
    items = sorted(map(str, items))
    return ", ".join(items[:limit]) + (f" ... ({len(items)} in all)" if len(items) > limit else "")


def _read(name: str, path: str | os.PathLike, problems: list[str]) -> pd.DataFrame | None:
    if not Path(path).is_file():
        problems.append(f"{name} {path}: file not found")
        return None
    try:
        return read_any(path)
    except Exception as exc:  # a table pandas cannot parse: the reason, not a traceback
        problems.append(f"{name} {path}: cannot be read as a table ({type(exc).__name__}: {exc})")
        return None


def _check_table(
    name: str,
    path: str | os.PathLike,
    covariate_columns: Sequence[str],
    today: pd.Timestamp | None,
) -> tuple[pd.DataFrame | None, list[str], list[str]]:
    """One table's (rows, problems, warnings); rows None when the table cannot be used."""
    problems: list[str] = []
    table = _read(name, path, problems)
    if table is None:
        return None, problems, []
    found, warnings = table_findings(table, name)
    if name == "covariates" and "eid" in table.columns:
        try:
            check_covariates(table, path, list(covariate_columns), today)
        except CovariatesError as exc:
            found += exc.problems
        # the contract's human ranges; age is judged by check_covariates above (same range)
        ranges = check_covariates_frame(table.drop(columns=["age"], errors="ignore"), path)
        found += [line.removeprefix(f"{path}: ") for line in ranges]
    prefix = f"{name} {path}: "
    usable = "eid" in table.columns and not any(p.startswith("missing required") for p in found)
    kept = table.drop_duplicates(ignore_index=True)
    kept.attrs["dropped_rows"] = len(table) - len(kept)
    return (
        kept if usable else None,
        [prefix + p for p in found],
        [prefix + w for w in warnings],
    )


def _check_manifest(
    path: str | os.PathLike, check_files: bool
) -> tuple[pd.DataFrame | None, list[str], list[str]]:
    """The manifest's (rows, problems, warnings): :func:`load_manifest` and what the door adds."""
    prefix = f"manifest {path}: "
    try:
        manifest = load_manifest(path, check_files=check_files)
    except ManifestError as exc:
        return None, [prefix + p for p in exc.problems], []
    if manifest.empty:
        return None, [prefix + "no subjects (a header and no rows)"], []
    problems, warnings = eid_findings(manifest)
    warnings = [*manifest.attrs.get("warnings", []), *warnings, *_path_warnings(manifest)]
    problems += _segmentation_findings(manifest) if check_files else []
    return (
        manifest,
        [prefix + p for p in problems],
        [prefix + w for w in warnings],
    )


def _path_warnings(manifest: pd.DataFrame) -> list[str]:
    """The same image file under two eids; a folder in an image column that also holds NIfTI
    files (a DICOM cohort's folders and zips are expected, a folder among NIfTI files is not)."""
    out = []
    for col in (c for c in IMAGE_COLUMNS if c in manifest.columns):
        paths = manifest[col]
        given = paths != ""
        shared = given & paths.duplicated(keep=False)
        for path, eids in manifest.loc[shared].groupby(col, sort=True)["eid"]:
            out.append(f"column {col}: the same file for eids {_examples(eids)} ({path})")
        folders = given & paths.map(os.path.isdir)
        n_files = int((given & paths.str.lower().str.endswith((".nii", ".nii.gz"))).sum())
        if folders.any() and n_files:
            out.append(
                f"column {col}: {int(folders.sum())} path(s) are folders while {n_files} "
                f"are NIfTI files (eids {_examples(manifest.loc[folders, 'eid'])}): a folder is read as "
                "DICOM; in a NIfTI cohort it is probably a mistake"
            )
    return out


def _segmentation_findings(manifest: pd.DataFrame) -> list[str]:
    """Provided segmentations must be label-map files: never folders, never the image itself."""
    out = []
    for view in VIEWS.values():
        image = manifest.get(view.name, pd.Series("", index=manifest.index))
        for col in (c for c in view.provided if c in manifest.columns):
            given = manifest[col] != ""
            folders = given & manifest[col].map(os.path.isdir)
            if folders.any():
                shown = [f"{e} ({p})" for e, p in manifest.loc[folders, ["eid", col]].to_numpy()]
                out.append(
                    f"column {col}: a folder, not a label-map file, for {_examples(shown, 3)}"
                )
            same = given & (manifest[col] == image)
            if same.any():
                out.append(
                    f"column {col}: the {view.name} image itself, not its labels, for eids "
                    f"{_examples(manifest.loc[same, 'eid'])}"
                )
    return out


def _spellings(manifest: pd.DataFrame) -> dict[str, str]:
    """The number an all-digit manifest eid spells -> the eid (``"1"`` -> ``"0001"``)."""
    spelling = dict(zip(number_key(manifest["eid"]), manifest["eid"], strict=True))
    spelling.pop("", None)
    return spelling


def _cross_findings(
    manifest: pd.DataFrame,
    spelling: Mapping[str, str],
    name: str,
    path: str | os.PathLike,
    table: pd.DataFrame,
) -> tuple[list[str], list[str]]:
    """One table against the manifest: its eids spelt with other leading zeros than the
    manifest's (a problem), no shared eid (a problem), manifest subjects it lacks (covariates: a
    warning), its eids missing from the manifest (a warning)."""
    prefix = f"{name} {path}: "
    subjects = set(manifest["eid"])
    eids = set(table["eid"]) - {""}
    problems, warnings = [], []
    others = sorted(eids - subjects)
    respelt = [
        (e, spelling[k])
        for e, k in zip(others, number_key(pd.Series(others, dtype=object)), strict=True)
        if k in spelling
    ]
    if respelt:
        shown = ", ".join(f"{e!r} is the manifest's {m!r}" for e, m in respelt[:5])
        problems.append(
            f"column eid: {shown}{' ...' if len(respelt) > 5 else ''} with other leading zeros "
            "(a spreadsheet drops them): write each id the same way in every table"
        )
    covered = subjects & eids
    if not covered and eids:
        meant = "" if name == "covariates" else "; a table with only its header means no records"
        problems.append(
            f"shares no eid with the manifest (manifest: {_examples(subjects, 3)}; {name}: "
            f"{_examples(eids, 3)}){meant}"
        )
    elif not covered and name == "covariates":
        problems.append("no rows: no subject can be analysed")
    lacking = subjects - eids
    if name == "covariates" and covered and lacking:
        warnings.append(
            f"{len(lacking)} of {len(subjects)} manifest subjects have no row (eids "
            f"{_examples(lacking)}): they are segmented and phenotyped but not analysed"
        )
    unknown = set(others) - {e for e, _ in respelt}
    if covered and unknown:
        warnings.append(
            f"{len(unknown)} eid(s) not in the manifest (eids {_examples(unknown)}): their rows "
            "are not used"
        )
    return [prefix + p for p in problems], [prefix + w for w in warnings]


def _counts(
    manifest: pd.DataFrame, tables: Mapping[str, pd.DataFrame], paths: Mapping[str, str]
) -> pd.DataFrame:
    """One row per table (COUNT_COLUMNS), the manifest first."""
    subjects = set(manifest["eid"])
    rows = [("manifest", str(paths["manifest"]), len(manifest), len(subjects), len(subjects), 0,
             int(manifest.attrs.get("dropped_rows", 0)))]  # fmt: skip
    for name, table in tables.items():
        eids = set(table["eid"]) - {""}
        rows.append((name, str(paths[name]), len(table), len(eids), len(subjects & eids),
                     len(eids - subjects), int(table.attrs.get("dropped_rows", 0))))  # fmt: skip
    return pd.DataFrame(rows, columns=list(COUNT_COLUMNS))


def _left_out(manifest: pd.DataFrame, covariates: pd.DataFrame | None) -> pd.DataFrame:
    """Manifest subjects the analyses will not include, known before any job: no covariates
    row, or a required covariate empty (the run summary's reasons, word for word)."""
    eids = manifest["eid"]
    if covariates is None:
        covariates = pd.DataFrame({"eid": pd.Series(dtype=object)})
    cov = covariates.drop_duplicates("eid").set_index("eid")
    required = [c for c in REQUIRED_COVARIATES if c in cov.columns]
    empty = cov.reindex(eids)[required].isna()
    reasons = pd.Series("", index=eids.index, dtype=object)
    for col in required:
        reasons = reasons.where(~empty[col].to_numpy(), reasons + ", " + col)
    reasons = ("covariates: missing " + reasons.str.removeprefix(", ")).where(reasons != "", "")
    absent = ~eids.isin(cov.index)
    reasons[absent] = "covariates: subject absent from the covariates table"
    keep = reasons != ""
    return pd.DataFrame({"eid": eids[keep], "reason": reasons[keep]}).reset_index(drop=True)


def check_cohort(
    manifest_path: str | os.PathLike,
    table_paths: Mapping[str, str | os.PathLike],
    covariate_columns: Sequence[str],
    today: pd.Timestamp | None = None,
    check_files: bool = True,
) -> CohortCheck:
    """Check the manifest and the tables (``table_paths``: covariates, diagnoses, deaths -> file)
    alone and against each other; raise :class:`CohortError` listing every problem, else log
    each warning and return what was found."""
    manifest, problems, warnings = _check_manifest(manifest_path, check_files)
    tables: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        table, found, warned = _check_table(name, table_paths[name], covariate_columns, today)
        problems += found
        warnings += warned
        if table is not None:
            tables[name] = table
    if manifest is not None:
        spelling = _spellings(manifest)
        for name, table in tables.items():
            found, warned = _cross_findings(manifest, spelling, name, table_paths[name], table)
            problems += found
            warnings += warned
    if problems:
        raise CohortError(problems)
    for line in warnings:
        log.warning("%s", line)
    paths = {"manifest": str(manifest_path), **{k: str(v) for k, v in table_paths.items()}}
    counts = _counts(manifest, tables, paths)
    left_out = _left_out(manifest, tables.get("covariates"))
    checked = CohortCheck(manifest, tables, counts, left_out, warnings)
    log.info("%s", checked.describe())
    return checked


def write_door_summary(check: CohortCheck, out_dir: str | os.PathLike) -> None:
    """``door.csv`` (the counts) and ``door_subjects.csv`` (manifest subjects left out, with
    why) in ``out_dir``, each rewritten only when its content changes."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_if_changed(check.counts.to_csv(index=False), out_dir / "door.csv")
    write_if_changed(check.left_out.to_csv(index=False), out_dir / "door_subjects.csv")


def check_checkpoints(segmentation: Mapping) -> None:
    """The checkpoints a config names (``segmentation.checkpoint``, ``.checkpoints.<view>``)
    that exist are opened as data (:func:`cardiopheno.segment.checkpoints.read_checkpoint`)
    before any job: one that would run code is refused here, naming the key and the file. A
    file not there yet (one the ``train_segmentation`` rule makes, a view without a model) is
    left to the stages. torch is imported only when a checkpoint is named."""
    named = {"segmentation.checkpoint": segmentation.get("checkpoint")}
    for view, path in (segmentation.get("checkpoints") or {}).items():
        named[f"segmentation.checkpoints.{view}"] = path
    named = {key: path for key, path in named.items() if path and Path(path).is_file()}
    if not named:
        return
    from cardiopheno.segment.checkpoints import CheckpointError, read_checkpoint

    problems = []
    for key, path in named.items():
        try:
            read_checkpoint(path)
        except CheckpointError as exc:
            problems.append(f"{key}: {exc}")
    if problems:
        raise ProblemsError("config", problems)
