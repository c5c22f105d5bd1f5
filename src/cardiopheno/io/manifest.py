"""The cohort manifest: which scans belong to which subject (docs/data-contracts.md, cohort input).

``load_manifest`` checks everything it can before any job starts and reports every problem at
once, so a user fixes a manifest in one pass rather than one error per run.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from pathlib import Path

import pandas as pd

from cardiopheno.errors import ProblemsError
from cardiopheno.io.tables import read_any
from cardiopheno.views import VIEWS, provided_columns

# the eid and the primary view's image (the short axis): every subject has them
REQUIRED_COLUMNS = ("eid", *(name for name, spec in VIEWS.items() if spec.primary))
IMAGE_COLUMNS = tuple(VIEWS)  # sa, la_2ch, la_4ch, ao
SEGMENTATION_COLUMNS = provided_columns()  # seg_sa, seg_la_2ch, seg4_la_4ch, seg_la_4ch, seg_ao
KNOWN_COLUMNS = frozenset(("eid", *IMAGE_COLUMNS, *SEGMENTATION_COLUMNS))
PATH_COLUMNS = (*IMAGE_COLUMNS, *SEGMENTATION_COLUMNS)

log = logging.getLogger(__name__)


class ManifestError(ProblemsError):
    """A manifest with problems; ``problems`` lists each one as a readable line."""

    def __init__(self, path: str | os.PathLike, problems: list[str]):
        self.path = Path(path)
        super().__init__(f"manifest {path}", problems)


def _preview(items: list[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" ... ({len(items)} in all)" if len(items) > limit else "")


def eid_problem(eid: str) -> str:
    """Why ``eid`` cannot name a subject's output folder, or "" when it can.

    Every eid becomes a path component (``results/segment/<batch>/<eid>/``, montages
    ``<eid>.png``), so it must stay one component inside results/: no path separator (``/``, ``\\``),
    no ``..`` and not ``.``, no control or other invisible characters (Unicode category C), no
    leading or trailing whitespace, and at most 250 bytes in UTF-8 (file names have 255). Any
    other text is fine, including non-ASCII letters (``ünï€``).
    """
    if "/" in eid or "\\" in eid:
        return "path separator"
    if eid == "." or ".." in eid:
        return "'.' or '..'"
    if any(unicodedata.category(ch).startswith("C") for ch in eid):
        return "control or invisible character"
    if eid != eid.strip():
        return "leading or trailing whitespace"
    if len(eid.encode("utf-8", "surrogatepass")) > 250:
        return "longer than 250 bytes"
    return ""


def output_key(eid: str) -> str:
    """The name a filesystem may treat ``eid``'s output folder as: Unicode NFC, case-folded.

    Two eids with the same key would share one output path on a case-insensitive (macOS,
    Windows) or normalising (HFS+) filesystem, so the manifest check refuses them.
    """
    return unicodedata.normalize("NFC", eid).casefold()


def load_manifest(path: str | os.PathLike, check_files: bool = True) -> pd.DataFrame:
    """Read and validate a manifest (CSV or Parquet); return it with absolute paths.

    Raises ManifestError listing every problem: missing required or unknown columns, empty eids,
    an eid on several different rows (rows repeated exactly are dropped, with a warning logged
    and kept in ``attrs["warnings"]``), eids that cannot be a path component
    (:func:`eid_problem`) or that would share an output path with another (:func:`output_key`),
    empty ``sa`` entries and (with ``check_files``) files that do not exist.
    Paths are relative to the manifest's folder unless absolute; empty optional paths stay "".
    """
    path = Path(path)
    df = _read_manifest_table(path)
    # the views as they are now (cardiopheno.views.VIEWS), so a new ViewSpec is all it takes
    path_columns = (*VIEWS, *provided_columns())
    problems, missing = _column_problems(df, path_columns)
    if missing:
        raise ManifestError(path, problems)

    df = df.copy()
    n_read = len(df)
    df["eid"] = df["eid"].fillna("").astype(str)
    empty_rows = [str(i + 2) for i in df.index[df["eid"] == ""]]  # +2: header, 1-based lines
    if empty_rows:
        problems.append(f"empty eid on line(s) {_preview(empty_rows)}")
    df, dropped = _drop_exact_duplicates(df, path)
    problems += _eid_problems(df)
    problems += _resolve_paths(df, path_columns, path.parent.resolve(), check_files)
    if problems:
        raise ManifestError(path, problems)
    df = df.reset_index(drop=True)
    df.attrs["warnings"] = dropped
    df.attrs["dropped_rows"] = n_read - len(df)
    return df


def _read_manifest_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ManifestError(path, [f"file not found: {path}"])
    try:
        return read_any(path)
    except Exception as exc:
        raise ManifestError(path, [f"cannot be read as a table: {exc}"]) from exc


def _column_problems(
    df: pd.DataFrame, path_columns: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    """Problem lines for missing required and unknown columns, and the missing ones."""
    problems = []
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    known = frozenset(("eid", *path_columns))
    unknown = sorted(set(df.columns) - known)
    if unknown:
        problems.append(
            f"unknown column(s): {', '.join(unknown)} "
            f"(expected some of: {', '.join(sorted(known))})"
        )
    return problems, missing


def _eid_problems(df: pd.DataFrame) -> list[str]:
    """Problem lines for eids on several different rows, eids that cannot name an output
    folder (:func:`eid_problem`) and eids that would share one (:func:`output_key`)."""
    problems = []
    dup = df["eid"].duplicated(keep=False) & (df["eid"] != "")
    if dup.any():
        lines = (
            df.index[dup]
            .to_series()
            .groupby(df.loc[dup, "eid"], sort=True)
            .agg(lambda rows: " and ".join(str(i + 2) for i in rows))
        )
        problems.append(
            "duplicate eid(s): "
            + _preview([f"{eid} (lines {at}, different rows)" for eid, at in lines.items()])
        )
    unsafe = [
        f"{eid!r} on line {i + 2} ({why})"
        for i, eid in zip(df.index, df["eid"], strict=True)
        if eid and (why := eid_problem(eid))
    ]
    if unsafe:
        problems.append(
            f"eid(s) that are not a single file name, so cannot name an output folder: "
            f"{_preview(unsafe)}"
        )
    distinct = pd.Series(df["eid"].unique())
    keys = distinct.map(output_key)
    clash = distinct[keys.duplicated(keep=False)]
    if len(clash):
        groups = clash.groupby(keys[clash.index], sort=True).agg(
            lambda s: " and ".join(map(repr, s))
        )
        problems.append(
            "eids that differ only by letter case or Unicode normalisation would share an output "
            f"path (case-insensitive filesystems): {_preview(groups.tolist())}"
        )
    return problems


def _resolve_paths(
    df: pd.DataFrame, path_columns: tuple[str, ...], base: Path, check_files: bool
) -> list[str]:
    """Make ``df``'s path columns absolute (relative to ``base``; empty stays ""), in place;
    problem lines for empty required paths and (with ``check_files``) absent files."""
    problems = []
    for col in (c for c in path_columns if c in df.columns):
        values = df[col].fillna("").astype(str).str.strip()
        # normpath, not Path.resolve: the same absolute path (links kept) 25 times faster, which
        # matters when 100,000 subjects are checked every time the workflow is read.
        df[col] = [os.path.normpath(os.path.join(base, v)) if v else "" for v in values]
        if col in REQUIRED_COLUMNS:
            no_path = df.loc[values == "", "eid"].tolist()
            if no_path:
                problems.append(f"empty {col} path for eid(s): {_preview(no_path)}")
        if check_files:
            absent = [
                f"{eid} ({p})"
                for eid, p in zip(df["eid"], df[col], strict=True)
                if p and not os.path.exists(p)
            ]
            if absent:
                problems.append(f"{col}: file(s) not found for {_preview(absent, 5)}")
    return problems


def _drop_exact_duplicates(df: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, list[str]]:
    """``df`` without rows that repeat an earlier row exactly, and a warning line naming them."""
    exact = df.duplicated(keep="first")
    if not exact.any():
        return df, []
    lines = [str(i + 2) for i in df.index[exact]]
    warning = f"{len(lines)} exact duplicate row(s) dropped (line(s) {_preview(lines)})"
    log.warning("manifest %s: %s", path, warning)
    return df[~exact], [warning]


def image_paths(manifest: str | os.PathLike, column: str = "sa") -> dict[str, str]:
    """eid -> absolute path of ``column`` (relative paths are relative to the manifest; "" when
    the cell is empty); {} when the manifest has no such column."""
    man = read_any(manifest)
    if column not in man.columns:
        return {}
    base = Path(manifest).resolve().parent
    return {
        str(e): str((base / p).resolve()) if p else ""
        for e, p in zip(man["eid"], man[column].fillna(""), strict=True)
    }
