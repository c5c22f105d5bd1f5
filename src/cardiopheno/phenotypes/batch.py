"""Phenotypes for a batch of subjects, and the merge of batch tables into one cohort table.

Input is the segment stage's per-batch status table (eid, seg_sa, ok, reason, ...) plus, for
families that read other views, those views' segment tables. A subject whose short-axis
segmentation failed or cannot be read still gets a row, with NaN values and the reason in
``phenotypes_reason``; a subject without another view (or whose view failed) keeps its short-axis
values, and ``phenotypes_notes`` says which values are missing and why.

The segment stage's per-subject uncertainty of the key phenotypes (``LVEDV_sd`` and so on,
:mod:`cardiopheno.segment.uncertainty`) is copied beside the values it describes (NaN for a
provided segmentation or a segment table without it); the statistics do not take it for an IDP.
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
from cardiopheno.io.paths import input_root, scrub_paths
from cardiopheno.io.tables import ColumnSpec, file_metadata, read_any, read_table, write_table
from cardiopheno.phenotypes.registry import (
    SHORT_AXIS_VIEW,
    PhenotypeError,
    PhenotypeSpec,
    compute_phenotypes,
    context_from_files,
    output_specs,
    reasons_text,
    resolve_families,
    view_from_files,
)
from cardiopheno.segment.uncertainty import UNCERTAINTY_COLUMNS
from cardiopheno.views import VIEWS

log = logging.getLogger(__name__)
STATUS_COLUMNS = {
    "phenotypes_ok": ColumnSpec("", "phenotypes were computed for this subject"),
    "phenotypes_reason": ColumnSpec("", "why not, when phenotypes_ok is false"),
    "phenotypes_seconds": ColumnSpec("s", "time spent computing this subject's phenotypes"),
    "phenotypes_notes": ColumnSpec(
        "", "values left out or computed with less data than usual, and why ('; '-separated)"
    ),
}


def column_specs(specs: Sequence[PhenotypeSpec]) -> dict[str, ColumnSpec]:
    cols = {s.name: ColumnSpec(s.unit, s.description) for s in specs}
    cols.update(UNCERTAINTY_COLUMNS)
    cols.update(STATUS_COLUMNS)
    return cols


def _covariates_by_eid(path: str | os.PathLike | None) -> dict[str, dict]:
    if not path:
        return {}
    df = read_any(path)
    keep = [c for c in ("height_cm", "weight_kg", "central_pp") if c in df.columns]
    return df.set_index("eid")[keep].to_dict(orient="index")


def view_segmentations(view_tables: Sequence[str | os.PathLike]) -> dict[str, dict[str, str]]:
    """eid -> {view: segmentation path} from other views' segment tables (failed views are
    listed with an empty path and their reason under ``<view>:reason``)."""
    out: dict[str, dict[str, str]] = {}
    for path in view_tables:
        view = file_metadata(path).get("view", "")
        table = read_table(path)
        seg_col = next(c for c in table.columns if c.startswith(("seg_", "seg4_")))
        for rec in table.itertuples(index=False):
            entry = out.setdefault(str(rec.eid), {})
            entry[view] = getattr(rec, seg_col) if rec.ok else ""
            if not rec.ok:
                entry[f"{view}:reason"] = str(rec.reason)
    return out


def cine_paths(manifest: str | os.PathLike, views: Sequence[str]) -> dict[str, dict[str, str]]:
    """eid -> {view: cine path} from a batch manifest (empty cells left out)."""
    out: dict[str, dict[str, str]] = {}
    for view in views:
        for eid, path in image_paths(manifest, view).items():
            if path:
                out.setdefault(eid, {})[view] = path
    return out


def phenotype_rows(
    subjects: pd.DataFrame,
    covariates: Mapping[str, Mapping[str, float]],
    families: Sequence[str] | None = None,
    ed_frame: str = "max_volume",
    views: Mapping[str, Mapping[str, str]] | None = None,
    images: Mapping[str, Mapping[str, str]] | None = None,
    options: Mapping[str, Mapping] | None = None,
) -> tuple[pd.DataFrame, list[PhenotypeSpec], pd.DataFrame]:
    """One row per subject in ``subjects`` (columns eid, seg_sa, optional ok/reason), the specs,
    and the families' per-frame curves in long format; ``views`` maps eid -> {view: segmentation
    path} (see :func:`view_segmentations`), ``images`` eid -> {view: cine path} (read only for
    the views of families that need the image, e.g. strain), ``options`` family -> settings."""
    fams = resolve_families(families)
    specs = output_specs(fams)
    image_views = {f.view for f in fams if f.needs_image}
    rows, curves = [], []
    for rec in tqdm(subjects.itertuples(index=False), total=len(subjects), desc="phenotypes"):
        eid = str(rec.eid)
        row: dict = {"eid": eid, **{s.name: math.nan for s in specs}, "phenotypes_notes": ""}
        seg_ok = bool(getattr(rec, "ok", True))
        subject_views = (views or {}).get(eid, {})
        notes = [
            f"{key.split(':')[0]} not segmented: {why}"
            for key, why in subject_views.items()
            if key.endswith(":reason")
        ]
        t0 = time.perf_counter()
        if not seg_ok:
            reason = f"segmentation failed: {getattr(rec, 'reason', '') or 'no reason given'}"
            row.update(phenotypes_ok=False, phenotypes_reason=reason)
        else:
            cines = {v: p for v, p in (images or {}).get(eid, {}).items() if v in image_views}
            try:
                ctx = context_from_files(
                    rec.seg_sa,
                    cines.get(SHORT_AXIS_VIEW),
                    covariates.get(eid, {}),
                    ed_frame_mode=ed_frame,
                    eid=eid,
                    views={
                        k: view_from_files(seg, cines.get(k), eid, view=k) if seg else ""
                        for k, seg in subject_views.items()
                        if ":" not in k
                    },
                    options=options,
                )
                row.update(compute_phenotypes(ctx, fams))
                row.update({c: _float(getattr(rec, c, math.nan)) for c in UNCERTAINTY_COLUMNS})
                row.update(phenotypes_ok=True, phenotypes_reason="")
                notes += ctx.notes + ([reasons_text(ctx)] if ctx.reasons else [])
                curves.extend(_long_curves(eid, ctx.curves))
            except (ImageReadError, PhenotypeError, OSError, ValueError) as exc:
                log.warning("%s: no phenotypes: %s", eid, exc)
                row.update(phenotypes_ok=False, phenotypes_reason=str(exc))
        row["phenotypes_seconds"] = time.perf_counter() - t0
        row["phenotypes_notes"] = "; ".join(notes)
        rows.append(row)
    df = pd.DataFrame(
        rows, columns=["eid", *[s.name for s in specs], *UNCERTAINTY_COLUMNS, *STATUS_COLUMNS]
    )
    for s in specs:
        df[s.name] = df[s.name].astype("Int64" if s.dtype == "int" else "float64")
    for c in UNCERTAINTY_COLUMNS:
        df[c] = df[c].astype("float64")
    df["phenotypes_ok"] = df["phenotypes_ok"].astype(bool)
    df["phenotypes_reason"] = df["phenotypes_reason"].fillna("").astype(str)
    df["phenotypes_notes"] = df["phenotypes_notes"].fillna("").astype(str)
    curves_df = pd.DataFrame(curves, columns=["eid", "curve", "frame", "phase", "value"])
    return df, specs, curves_df


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _long_curves(eid: str, curves: Mapping[str, object]) -> list[tuple]:
    """(eid, curve, frame, phase in [0, 1) of the cine, value) rows of one subject's curves."""
    out = []
    for name, values in curves.items():
        n = len(values)
        out += [(eid, name, t, t / n, float(v)) for t, v in enumerate(values)]
    return out


CURVE_COLUMNS = {
    "phase": ColumnSpec("", "frame / frames: position in the cine's cycle (0 = its first frame)"),
    "value": ColumnSpec(
        "see curve",
        "per-frame value: LA_biplane_volume_ml and RA_4ch_volume_ml in mL; Ecc_global, "
        "Err_global and Ell_global in % (strain against the ED frame)",
    ),
}


def phenotypes_batch(
    segment_table: str | os.PathLike,
    out: str | os.PathLike,
    covariates: str | os.PathLike | None = None,
    families: Sequence[str] | None = None,
    ed_frame: str = "max_volume",
    config: Mapping | None = None,
    view_tables: Sequence[str | os.PathLike] = (),
    curves_out: str | os.PathLike | None = None,
    manifest: str | os.PathLike | None = None,
    options: Mapping[str, Mapping] | None = None,
) -> pd.DataFrame:
    """Compute a batch's phenotypes from its segment status table (and the other views' tables)
    and write them as Parquet; the families' per-frame curves (long format) to ``curves_out``.
    ``manifest`` (the batch's: eid and a cine column per view) gives the families that read
    images (strain) their cines; ``options`` maps a family to its settings."""
    subjects = read_table(segment_table)
    views = view_segmentations(view_tables)
    df, specs, curves = phenotype_rows(
        subjects,
        _covariates_by_eid(covariates),
        families,
        ed_frame,
        views,
        cine_paths(manifest, list(VIEWS)) if manifest else None,
        options,
    )
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
    if curves_out:
        write_table(curves, curves_out, columns=CURVE_COLUMNS, config=config)
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
