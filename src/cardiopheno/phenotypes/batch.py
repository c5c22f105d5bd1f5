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

from cardiopheno.io.manifest import image_paths
from cardiopheno.io.nifti import ImageReadError
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
    "phenotypes_notes": ColumnSpec("", "why a family left its values NaN (e.g. strain: no image)"),
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
    images: Mapping[str, str] | None = None,
    options: Mapping[str, Mapping] | None = None,
    curves: list[pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, list[PhenotypeSpec]]:
    """One row per subject in ``subjects`` (columns eid, seg_sa, optional ok/reason).

    ``images`` (eid -> cine path) gives families that need the image (strain) their input; the
    strain family's per-frame curves are appended to ``curves`` (with the eid) when given.
    """
    images = images or {}
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
                    rec.seg_sa,
                    images.get(eid),
                    covariates.get(eid, {}),
                    ed_frame_mode=ed_frame,
                    eid=eid,
                    options=options,
                )
                row.update(compute_phenotypes(ctx, fams))
                row.update(phenotypes_ok=True, phenotypes_reason="")
                row["phenotypes_notes"] = "; ".join(ctx.notes)
                strain_curves = ctx.artifacts.get("strain_curves")
                if curves is not None and isinstance(strain_curves, pd.DataFrame):
                    curves.append(strain_curves.assign(eid=eid))
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
    df["phenotypes_notes"] = df["phenotypes_notes"].fillna("").astype(str)
    return df, specs


def phenotypes_batch(
    segment_table: str | os.PathLike,
    out: str | os.PathLike,
    covariates: str | os.PathLike | None = None,
    families: Sequence[str] | None = None,
    ed_frame: str = "max_volume",
    config: Mapping | None = None,
    manifest: str | os.PathLike | None = None,
    options: Mapping[str, Mapping] | None = None,
    strain_curves: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Compute a batch's phenotypes from its segment status table and write them as Parquet.

    ``manifest`` (the batch manifest: eid, sa) gives the cines for families that read images;
    ``strain_curves``, when given, receives the per-frame global strain curves (long format).
    """
    subjects = read_table(segment_table)
    images = {k: v for k, v in image_paths(manifest).items() if v} if manifest else {}
    curves: list[pd.DataFrame] = []
    df, specs = phenotype_rows(
        subjects, _covariates_by_eid(covariates), families, ed_frame, images, options, curves
    )
    if strain_curves:
        write_strain_curves(curves, strain_curves, config)
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


def write_strain_curves(
    curves: Sequence[pd.DataFrame], out: str | os.PathLike, config: Mapping | None = None
) -> pd.DataFrame:
    """Per-frame global strain curves of a batch (eid, frame, time_ms, Ecc_global, Err_global)."""
    from cardiopheno.phenotypes.strain import CURVE_COLUMNS

    cols = ["eid", *CURVE_COLUMNS]
    df = pd.concat(curves, ignore_index=True)[cols] if curves else pd.DataFrame(columns=cols)
    df = df.astype({"eid": str, "frame": "int64", "time_ms": float, "Ecc_global": float,
                    "Err_global": float})  # fmt: skip
    specs = {k: ColumnSpec(u, d) for k, (u, d) in CURVE_COLUMNS.items() if k != "frame"}
    write_table(df, out, columns=specs, config=config)
    return df


def merge_strain_curves(
    batch_tables: Sequence[str | os.PathLike], out: str | os.PathLike, config: Mapping | None = None
) -> pd.DataFrame:
    """Concatenate per-batch strain curve tables (sorted by eid and frame)."""
    frames = [read_table(p) for p in batch_tables]
    return write_strain_curves(
        [f.sort_values(["eid", "frame"], kind="stable") for f in frames if len(f)], out, config
    )


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
