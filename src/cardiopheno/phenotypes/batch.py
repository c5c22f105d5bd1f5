"""Phenotypes for a batch of subjects, and the merge of batch tables into one cohort table.

Input is the segment stage's per-batch status table (eid, seg_sa, ok, reason, ...). A subject
whose segmentation failed or cannot be read still gets a row, with NaN values and the reason in
``phenotypes_reason``, so that nothing is silently lost between stages.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence

import pandas as pd
from tqdm import tqdm

from cardiopheno.io.nifti import ImageReadError
from cardiopheno.io.paths import input_root, scrub_paths
from cardiopheno.io.tables import ColumnSpec, file_metadata, read_any, read_table, write_table
from cardiopheno.phenotypes.registry import (
    PhenotypeError,
    PhenotypeSpec,
    compute_phenotypes,
    context_from_files,
    output_specs,
    resolve_families,
)

log = logging.getLogger(__name__)
STATUS_COLUMNS = {
    "phenotypes_ok": ColumnSpec("", "phenotypes were computed for this subject"),
    "phenotypes_reason": ColumnSpec("", "why not, when phenotypes_ok is false"),
    "phenotypes_seconds": ColumnSpec("s", "time spent computing this subject's phenotypes"),
}


def column_specs(specs: Sequence[PhenotypeSpec]) -> dict[str, ColumnSpec]:
    cols = {s.name: ColumnSpec(s.unit, s.description) for s in specs}
    cols.update(STATUS_COLUMNS)
    return cols


def _covariates_by_eid(path: str | os.PathLike | None) -> dict[str, dict]:
    if not path:
        return {}
    df = read_any(path)
    keep = [c for c in ("height_cm", "weight_kg") if c in df.columns]
    return df.set_index("eid")[keep].to_dict(orient="index")


def phenotype_rows(
    subjects: pd.DataFrame,
    covariates: Mapping[str, Mapping[str, float]],
    families: Sequence[str] | None = None,
    ed_frame: str = "max_volume",
) -> tuple[pd.DataFrame, list[PhenotypeSpec]]:
    """One row per subject in ``subjects`` (columns eid, seg_sa, optional ok/reason)."""
    fams = resolve_families(families)
    specs = output_specs(fams)
    rows = []
    for rec in tqdm(subjects.itertuples(index=False), total=len(subjects), desc="phenotypes"):
        eid = str(rec.eid)
        row: dict = {"eid": eid, **{s.name: math.nan for s in specs}}
        seg_ok = bool(getattr(rec, "ok", True))
        t0 = time.perf_counter()
        if not seg_ok:
            reason = f"segmentation failed: {getattr(rec, 'reason', '') or 'no reason given'}"
            row.update(phenotypes_ok=False, phenotypes_reason=reason)
        else:
            try:
                ctx = context_from_files(
                    rec.seg_sa, None, covariates.get(eid, {}), ed_frame_mode=ed_frame, eid=eid
                )
                row.update(compute_phenotypes(ctx, fams))
                row.update(phenotypes_ok=True, phenotypes_reason="")
            except (ImageReadError, PhenotypeError, OSError, ValueError) as exc:
                log.warning("%s: no phenotypes: %s", eid, exc)
                row.update(phenotypes_ok=False, phenotypes_reason=str(exc))
        row["phenotypes_seconds"] = time.perf_counter() - t0
        rows.append(row)
    df = pd.DataFrame(rows, columns=["eid", *[s.name for s in specs], *STATUS_COLUMNS])
    for s in specs:
        df[s.name] = df[s.name].astype("Int64" if s.dtype == "int" else "float64")
    df["phenotypes_ok"] = df["phenotypes_ok"].astype(bool)
    df["phenotypes_reason"] = df["phenotypes_reason"].fillna("").astype(str)
    return df, specs


def phenotypes_batch(
    segment_table: str | os.PathLike,
    out: str | os.PathLike,
    covariates: str | os.PathLike | None = None,
    families: Sequence[str] | None = None,
    ed_frame: str = "max_volume",
    config: Mapping | None = None,
) -> pd.DataFrame:
    """Compute a batch's phenotypes from its segment status table and write them as Parquet."""
    subjects = read_table(segment_table)
    df, specs = phenotype_rows(subjects, _covariates_by_eid(covariates), families, ed_frame)
    root = input_root(config)  # reasons show paths relative to the manifest's folder
    df["phenotypes_reason"] = [
        scrub_paths(reason, [seg], root)
        for reason, seg in zip(df["phenotypes_reason"], subjects["seg_sa"], strict=True)
    ]
    model_sha = file_metadata(segment_table).get("model_sha256", "")
    write_table(
        df,
        out,
        columns=column_specs(specs),
        config=config,
        model_sha256=model_sha,
        extra={"ed_frame": ed_frame, "families": ",".join(families or [])},
    )
    n_bad = int((~df["phenotypes_ok"]).sum())
    log.info("%s: %d subjects, %d without phenotypes", out, len(df), n_bad)
    return df


def merge_phenotypes(
    batch_tables: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: Mapping | None = None,
) -> pd.DataFrame:
    """Concatenate per-batch phenotype tables (sorted by eid) keeping column and file metadata."""
    from cardiopheno.io.tables import column_specs as stored_specs

    frames = [read_table(p) for p in batch_tables]
    df = pd.concat(frames, ignore_index=True).sort_values("eid", kind="stable")
    if df["eid"].duplicated().any():
        dup = df.loc[df["eid"].duplicated(), "eid"].tolist()[:10]
        raise ValueError(f"eids in more than one phenotype batch: {dup}")
    specs: dict[str, ColumnSpec] = {}
    shas = set()
    for p in batch_tables:
        specs.update(stored_specs(p))
        shas.add(file_metadata(p).get("model_sha256", ""))
    meta = file_metadata(batch_tables[0]) if batch_tables else {}
    write_table(
        df.reset_index(drop=True),
        out,
        columns=specs,
        config=config,
        model_sha256=",".join(sorted(s for s in shas if s)),
        extra={k: meta.get(k, "") for k in ("ed_frame", "families")} | {"n_batches": len(frames)},
    )
    return df
