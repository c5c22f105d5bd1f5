"""Stable batches of subjects: a persisted plan that grows and never reshuffles.

Jobs work on batches of subjects (docs/design.md, Scale). The plan (``plan.csv``: eid -> batch) is kept
beside the per-batch manifests (``{batch}.csv``) and only ever extended: a subject keeps the batch it
was first given, and subjects new to the cohort fill new batches of ``batch_size``. A per-batch
manifest is rewritten only when its content changes, so Snakemake (which compares modification times)
re-runs exactly the batches whose subjects changed plus the cohort-level steps that gather them.

Why not a hash of the eid modulo the number of batches (the first design)? With a derived number of
batches every batch changes when the cohort grows; with a fixed number, 100 new subjects land in up
to 100 different batches (about 40% of a 5,000-subject run at 25 per batch), while the plan puts them
in 4 new batches and leaves every finished batch untouched.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from cardiopheno.io.atomic import atomic_path
from cardiopheno.io.manifest import load_manifest
from cardiopheno.io.tables import read_any

log = logging.getLogger(__name__)

PLAN_NAME = "plan.csv"
INDEX_NAME = "index.csv"


class BatchPlanError(ValueError):
    """A batch plan on disk that cannot be used (unreadable, duplicate eids, bad batch names)."""


def batch_name(index: int) -> str:
    """Batch wildcard value: ``b0000``, ``b0001``, ... (sorted by name = sorted by index)."""
    return f"b{index:04d}"


def batch_number(name: str) -> int:
    """Inverse of :func:`batch_name`; raises ``BatchPlanError`` naming a malformed value."""
    if len(name) < 5 or name[0] != "b" or not name[1:].isdigit():
        raise BatchPlanError(f"not a batch name (expected b0000, b0001, ...): {name!r}")
    return int(name[1:])


def n_batches_for(n_subjects: int, batch_size: int) -> int:
    """Batches a fresh plan makes for ``n_subjects`` at ``batch_size`` each (at least one)."""
    return max(1, math.ceil(n_subjects / batch_size))


def extend_plan(plan: pd.DataFrame | None, eids: Iterable[str], batch_size: int) -> pd.DataFrame:
    """The plan with every eid in ``eids`` given a batch; existing assignments never change.

    Eids already in ``plan`` keep their batch (even if absent from ``eids``: a subject that leaves and
    comes back returns to its batch). New eids, sorted so the result does not depend on the
    manifest's row order, fill new batches of ``batch_size`` numbered after the highest existing one.
    Returns columns ``eid``, ``batch``, new rows appended after the old ones.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    plan = (
        pd.DataFrame({"eid": pd.Series(dtype=str), "batch": pd.Series(dtype=str)})
        if plan is None
        else plan[["eid", "batch"]].astype(str)
    )
    known = set(plan["eid"])
    new = sorted({str(e) for e in eids} - known)
    if not new:
        return plan.reset_index(drop=True)
    start = max((batch_number(b) for b in plan["batch"]), default=-1) + 1
    added = pd.DataFrame(
        {"eid": new, "batch": [batch_name(start + i // batch_size) for i in range(len(new))]}
    )
    log.info(
        "batch plan: %d new subject(s) in %d new batch(es) from %s",
        len(new),
        added["batch"].nunique(),
        added["batch"].iloc[0],
    )
    return pd.concat([plan, added], ignore_index=True)


def read_plan(path: str | os.PathLike) -> pd.DataFrame | None:
    """The plan at ``path`` (``eid``, ``batch`` as strings), or None if there is none yet."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        plan = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise BatchPlanError(f"batch plan {path} cannot be read: {exc}") from exc
    missing = {"eid", "batch"} - set(plan.columns)
    if missing:
        raise BatchPlanError(f"batch plan {path} lacks column(s) {', '.join(sorted(missing))}")
    dup = plan.loc[plan["eid"].duplicated(), "eid"].tolist()
    if dup:
        raise BatchPlanError(f"batch plan {path} lists eid(s) twice: {', '.join(dup[:10])}")
    for name in plan["batch"].unique():
        try:
            batch_number(name)
        except BatchPlanError as exc:
            raise BatchPlanError(f"batch plan {path}: {exc}") from exc
    return plan


def write_if_changed(text: str, path: str | os.PathLike) -> bool:
    """Write ``text`` to ``path`` atomically unless it already holds exactly that; True if written.

    Leaving an unchanged file alone keeps its modification time, which is what tells Snakemake that
    the jobs reading it need not run again.
    """
    path = Path(path)
    if path.is_file() and path.read_text() == text:
        return False
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return True


def materialise(
    manifest: pd.DataFrame,
    out_dir: str | os.PathLike,
    batch_size: int,
    extend: bool = True,
    tables: dict[str, pd.DataFrame] | None = None,
) -> list[str]:
    """Bring ``out_dir`` in line with ``manifest``: plan, per-batch manifests and an index.

    ``manifest`` is a validated manifest (``cardiopheno.io.manifest.load_manifest``: absolute paths).
    With ``extend`` the plan already in ``out_dir`` is extended; without, a fresh plan is made.
    Writes ``plan.csv`` (every eid ever planned), ``{batch}.csv`` (the manifest rows of the batch's
    current subjects, in plan order) and ``index.csv`` (batch, n_subjects), each only if its content
    changed, and deletes the manifests of batches left without subjects. ``tables`` (name -> a
    cohort table with an ``eid`` column, e.g. the covariates) are sliced the same way into
    ``{batch}.{name}.csv`` (the batch's rows; a subject absent from a table has no row there), so a
    per-batch job reading them re-runs only when its own subjects' rows change. Returns the batch
    names that hold at least one current subject, sorted.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    old = read_plan(out_dir / PLAN_NAME) if extend else None
    plan = extend_plan(old, manifest["eid"], batch_size)
    write_if_changed(plan.to_csv(index=False), out_dir / PLAN_NAME)

    eids = manifest["eid"].astype(str)
    current = plan[plan["eid"].isin(set(eids))]
    batches = sorted(current["batch"].unique())
    rows = manifest.assign(eid=eids).set_index("eid", drop=False).loc[current["eid"]]
    texts = {"": _csv_by_batch(rows, current["batch"].to_numpy(), batches)}
    to_batch = dict(zip(current["eid"], current["batch"], strict=True))
    for name, table in (tables or {}).items():
        labels = table["eid"].astype(str).map(to_batch)
        keep = labels.notna().to_numpy()
        texts[f".{name}"] = _csv_by_batch(table[keep], labels[keep].to_numpy(), batches)
    written = 0
    for suffix, by_batch in texts.items():
        for batch in batches:
            changed = write_if_changed(by_batch[batch], out_dir / f"{batch}{suffix}.csv")
            written += changed and not suffix
    for stale in set(plan["batch"]) - set(batches):
        for suffix in texts:
            (out_dir / f"{stale}{suffix}.csv").unlink(missing_ok=True)
    index = current.groupby("batch", sort=True).size().rename("n_subjects").reset_index()
    write_if_changed(index.to_csv(index=False), out_dir / INDEX_NAME)
    log.info(
        "%d subject(s) in %d batch(es); %d batch manifest(s) (re)written",
        len(current),
        len(batches),
        written,
    )
    return batches


def _csv_by_batch(df: pd.DataFrame, labels, batches: Sequence[str]) -> dict[str, str]:
    """CSV text of ``df``'s rows per batch (``labels``: each row's batch), rows in ``df`` order.

    One ``to_csv`` for the whole table, then its lines dealt out by batch: at 30,000 subjects in
    1,200 batches this is about a hundred times faster than ``to_csv`` per batch. A batch without
    rows gets the header alone.
    """
    text = df.to_csv(index=False, lineterminator="\n")
    lines = text.split("\n")[:-1]
    if len(lines) != len(df) + 1:  # a quoted value holds a line break: one to_csv per batch
        parts = {b: g.to_csv(index=False) for b, g in df.groupby(labels, sort=False)}
        empty = df.iloc[:0].to_csv(index=False)
        return {b: parts.get(b, empty) for b in batches}
    header = lines[0] + "\n"
    grouped: dict[str, list[str]] = {b: [] for b in batches}
    for label, line in zip(labels, lines[1:], strict=True):
        grouped[label].append(line + "\n")
    return {b: header + "".join(grouped[b]) for b in batches}


def read_index(out_dir: str | os.PathLike) -> list[str]:
    """Batch names listed in ``out_dir/index.csv`` (written by :func:`materialise`)."""
    path = Path(out_dir) / INDEX_NAME
    if not path.is_file():
        raise BatchPlanError(f"batch index {path} not found (the main Snakemake process writes it)")
    return sorted(pd.read_csv(path, dtype=str)["batch"])


def planned_batches(n_subjects: int, batch_size: int) -> list[str]:
    """The batch names a fresh plan gives ``n_subjects`` subjects (known before the manifest is)."""
    return [batch_name(i) for i in range(n_batches_for(n_subjects, batch_size))]


def split_manifest(
    manifest_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    batch_size: int,
    expected: Sequence[str] | None = None,
    tables: dict[str, str | os.PathLike] | None = None,
) -> list[str]:
    """Validate the manifest at ``manifest_path`` and materialise a fresh plan into ``out_dir``.

    ``expected``: the batch names the workflow planned before the manifest existed; a manifest that
    yields others (a cohort of another size than configured) is an error naming both. ``tables``:
    name -> path of cohort tables to slice per batch (see :func:`materialise`).
    """
    batches = materialise(
        load_manifest(manifest_path),
        out_dir,
        batch_size,
        extend=False,
        tables=read_tables(tables or {}),
    )
    if expected is not None and sorted(expected) != batches:
        raise BatchPlanError(
            f"manifest {manifest_path} makes {len(batches)} batch(es) of {batch_size}, but the "
            f"workflow planned {len(expected)} from the configured cohort size"
        )
    return batches


def read_tables(paths: dict[str, str | os.PathLike]) -> dict[str, pd.DataFrame]:
    """Cohort tables by name (CSV or Parquet, ``eid`` as string); an error names a missing one."""
    out = {}
    for name, path in paths.items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"{name} table not found: {path}")
        out[name] = read_any(path)
        if "eid" not in out[name].columns:
            raise BatchPlanError(f"{name} table {path} has no eid column")
    return out


def batch_eids(batch_manifest: str | os.PathLike) -> Sequence[str]:
    """The eids of one batch manifest, as strings, in order."""
    return pd.read_csv(batch_manifest, dtype={"eid": str}, usecols=["eid"])["eid"].tolist()
