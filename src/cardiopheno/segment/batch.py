"""The segment stage's batch driver: one view of a batch of subjects from a manifest, a data loader
reading and preprocessing the next scans (:class:`CineDataset`) while the network runs
(:class:`~cardiopheno.segment.segmenter.Segmenter`), provided segmentations checked and used in
place of the network, and the status table written (:mod:`cardiopheno.segment.status`). One
subject's failure is a row with its reason, never a crashed batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from cardiopheno.io.areas import remove_areas
from cardiopheno.io.contract import InputError, spacing_problems, without_reprs
from cardiopheno.io.nifti import ImageReadError, load_cine, read_frame_interval, save_labels_like
from cardiopheno.io.paths import input_root, scrub_paths
from cardiopheno.io.provided import check_provided_segmentation
from cardiopheno.io.tables import read_table
from cardiopheno.segment.convention import check_convention
from cardiopheno.segment.inference_options import ComputeOptions, PassOptions, StepOptions
from cardiopheno.segment.segmenter import Prepared, Segmenter, nifti_shape, save_segmentation
from cardiopheno.segment.status import new_record, uncertainty_columns, write_status
from cardiopheno.views import ViewSpec, view_spec

log = logging.getLogger(__name__)


class CineDataset(torch.utils.data.Dataset):
    """Reads and preprocesses one subject per item; failures come back as an error string."""

    def __init__(self, rows: list[dict], segmenter: Segmenter):
        self.rows = rows
        self.view = segmenter.view
        self.prepare = segmenter.prepare

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Prepared:
        row = self.rows[i]
        t0 = time.perf_counter()
        if row.get("error"):  # failed upstream (no image, DICOM conversion): keep its reason
            return Prepared(row["eid"], (0, 0, 0, 0), None, error=row["error"], source="model")
        try:
            if row.get("provided"):
                prep = Prepared(row["eid"], (0, 0, 0, 0), None, source="provided")
                # the phenotypes read the segmentation's header first, then the image's; an
                # unreadable file is reported by check_provided_segmentation below
                with contextlib.suppress(ImageReadError):
                    interval = read_frame_interval(row["provided"])
                    if interval[0] is None:
                        interval = read_frame_interval(row["image"])
                    prep.frame_interval_ms, prep.frame_interval_source = interval
                return prep
            cine = load_cine(row["image"])
            if cine.data.size == 0:
                raise ImageReadError(f"{row['image']}: empty image {cine.data.shape}")
            if self.view.single_slice and cine.data.shape[2] != 1:
                raise ImageReadError(
                    f"{row['image']}: the {self.view.name} view is a single-slice cine "
                    f"(X x Y x 1 x frames), this image is {cine.data.shape}"
                )
            problems = spacing_problems(cine.spacing, row["image"])
            if problems:  # the input contract: a spacing no scanner writes
                raise InputError("; ".join(problems))
            prep = self.prepare(cine.data, cine.spacing, row["eid"], affine=cine.affine)
            prep.frame_interval_ms = cine.frame_interval_ms
            prep.frame_interval_source = cine.frame_interval_source
        except Exception as exc:  # one bad subject must not stop the batch
            return Prepared(row["eid"], (0, 0, 0, 0), None, error=reason_text(exc), source="model")
        prep.source = "model"
        prep.seconds = time.perf_counter() - t0
        return prep


def _as_is(item):
    """The data loader's collate function: items pass through as they are."""
    return item


def reason_text(exc: Exception) -> str:
    """An exception as a one-line reason for the table, without object reprs."""
    return without_reprs(f"{type(exc).__name__}: {exc}".replace("\n", " "))


def job_rows(manifest: pd.DataFrame, eids: Sequence[str], view: ViewSpec) -> list[dict]:
    """What each subject brings for ``view``: its image, a provided segmentation (the first
    non-empty of the view's provided columns), or why there is nothing to segment."""
    by_eid = {str(r["eid"]): r for r in manifest.to_dict("records")}

    def text(value) -> str:
        return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)

    rows = []
    for eid in eids:
        r = by_eid.get(str(eid), {})
        image = text(r.get(view.name))
        column = next((c for c in view.provided if text(r.get(c))), "")
        error = ""
        if view.primary and not r.get("ok", True):  # the conversion table's own row status
            error = f"conversion: {r.get('reason') or 'failed'}"
        elif text(r.get(f"{view.name}_reason")):  # another view's DICOM conversion failed
            error = f"conversion: {text(r.get(f'{view.name}_reason'))}"
        elif not image:
            error = f"no {view.name} image in the manifest"
        rows.append(
            {
                "eid": str(eid),
                "image": image,
                "provided": text(r.get(column)) if column else "",
                "provided_column": column,
                "error": error,
            }
        )
    return rows


def use_provided(row: dict, view: ViewSpec, out_dir: Path) -> str:
    """Check a provided segmentation against its image; return the label map to use: the file
    itself when it is in the view's own convention, else a copy mapped onto the view's labels."""
    column = row["provided_column"]
    lut = view.provided[column]
    allowed = {i: f"label {i}" for i in range(1, len(lut))}
    if column == view.seg_name:
        allowed = view.labels
    problem = check_provided_segmentation(row["image"], row["provided"], allowed=allowed)
    if problem:
        raise ValueError(problem)
    if column == view.seg_name:
        return str(Path(row["provided"]).resolve())
    labels = np.rint(load_cine(row["provided"], dtype=np.float32).data).astype(np.uint8)
    dest = out_dir / row["eid"] / f"{view.seg_name}.nii.gz"
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_areas(dest)  # a model's areas from an earlier run would not be these labels'
    mapped = view.map_provided(column, labels)
    save_labels_like(
        dest, mapped if len(nifti_shape(row["provided"])) == 4 else mapped[..., 0], row["image"]
    )
    return str(dest.resolve())


def _segment_one(row: dict, prep: Prepared, segmenter: Segmenter, out_dir: Path, root) -> dict:
    """One subject's status row: a provided segmentation used, or the network's written."""
    view = segmenter.view
    t0 = time.perf_counter()
    rec = new_record(
        view, prep.eid, source=prep.source or "model", reason=prep.error,
        frame_interval_ms=prep.frame_interval_ms or float("nan"),
        frame_interval_source=prep.frame_interval_source,
    )  # fmt: skip
    try:
        if prep.source == "provided":
            rec.update({view.seg_name: use_provided(row, view, out_dir), "ok": True})
        elif not prep.error:
            seg = segmenter.segment_prepared(prep)
            dest = out_dir / prep.eid / f"{view.seg_name}.nii.gz"
            dest.parent.mkdir(parents=True, exist_ok=True)
            save_segmentation(dest, seg, row["image"], view)
            rec.update({view.seg_name: str(dest.resolve()), "ok": True})
            rec.update({f"tta_dice_{k}": v for k, v in seg.tta.items()})
            rec.update({c: seg.uncertainty.get(c, float("nan")) for c in uncertainty_columns(view)})
    except Exception as exc:  # recorded, and the batch goes on
        rec.update(ok=False, reason=reason_text(exc))
    if not rec["ok"]:
        rec["reason"] = scrub_paths(rec["reason"], (row["image"], row["provided"]), root)
        log.warning("subject %s (%s) failed: %s", prep.eid, view.name, rec["reason"])
    rec["seconds"] = prep.seconds + time.perf_counter() - t0
    return rec


def segment_batch(
    manifest: pd.DataFrame,
    eids: Sequence[str],
    out_dir: str | os.PathLike,
    table_path: str | os.PathLike,
    segmenter: Segmenter,
    num_workers: int = 1,
    progress: bool = True,
    config: dict | None = None,
    root: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Segment ``eids`` of ``manifest`` (absolute image paths in the view's column, optional
    provided segmentations) into ``out_dir/<eid>/<seg_name>.nii.gz`` and write the status table
    (:mod:`cardiopheno.segment.status`) to ``table_path``.

    Failure reasons show input paths relative to ``root`` (the manifest's folder; see
    :func:`cardiopheno.io.paths.display_path`), never absolute."""
    view = segmenter.view
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = job_rows(manifest, eids, view)
    loader = torch.utils.data.DataLoader(
        CineDataset(rows, segmenter),
        batch_size=None,
        collate_fn=_as_is,
        num_workers=num_workers,
        prefetch_factor=2 if num_workers else None,
    )
    records = [
        _segment_one(row, prep, segmenter, out_dir, root)
        for row, prep in tqdm(
            zip(rows, loader, strict=True), total=len(rows), disable=not progress, desc=view.name
        )
    ]
    table = write_status(
        records,
        table_path,
        view,
        config=config,
        model_sha256=segmenter.sha256,
        extra={
            "view": view.name,
            "checkpoint": str(segmenter.checkpoint),
            "precision": segmenter.precision,
            "flip_ensemble": str(len(segmenter.flips)),
            "convention": segmenter.convention,
        },
    )
    log.info(
        "%s: segmented %d of %d subjects (%s)",
        view.name,
        int(table["ok"].sum()),
        len(table),
        table_path,
    )
    return table


def run_batch(
    manifest_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    table_path: str | os.PathLike,
    settings: dict,
    threads: int | None = None,
    config: dict | None = None,
    view: str = "sa",
    ed_frame: str = "max_volume",
) -> pd.DataFrame:
    """Segment ``view`` for every subject of a (batch) manifest with the ``segmentation`` config
    section (``settings``; a view's own checkpoint under ``checkpoints``). ``ed_frame`` is how the
    phenotypes choose ED (config ``phenotypes.ed_frame``, a param of the segment rules so that
    changing it re-runs them): the TTA Dice and the ``*_sd`` columns are read at ED and ES.

    ``threads`` (the rule's) are split between the network (torch threads) and one data-loader
    worker reading and preprocessing the next scans; with one thread the reading is done inline.
    """
    from cardiopheno.io.manifest import load_manifest

    threads = max(1, int(threads or 1))
    if str(manifest_path).endswith(".parquet"):
        # The DICOM conversion's status table (eid, sa, seg_sa, ok, reason, ...): subjects whose
        # conversion failed are recorded as failed here, with the conversion's reason.
        manifest = read_table(manifest_path)
        manifest["ok"] = manifest["ok"].astype(bool)
    else:
        manifest = load_manifest(manifest_path, check_files=False)
    spec = view_spec(view)
    # the primary view's model is segmentation.checkpoint, the others' checkpoints.<view>
    checkpoint = settings.get("checkpoint") if spec.primary else None
    checkpoint = checkpoint or (settings.get("checkpoints") or {}).get(spec.name) or None
    eids = manifest["eid"].astype(str).tolist()
    if not spec.primary and not Path(checkpoint or spec.default_checkpoint).is_file():
        # a view without a model is recorded, subject by subject, not a crashed workflow
        return without_model(eids, spec, checkpoint, out_dir, table_path, config)
    segmenter = Segmenter(
        checkpoint,
        settings.get("device", "auto"),
        spec,
        compute=ComputeOptions(
            slice_batch=settings.get("slice_batch") or None,
            precision=settings.get("precision", "auto"),
            threads=threads,
        ),
        steps=StepOptions(
            heart_crop=bool(settings.get("heart_crop", True)),
            largest_component=bool(settings.get("largest_component", True)),
            fill_holes=bool(settings.get("fill_holes", True)),
            convention=resolve_convention(settings.get("convention", "auto"), config),
            ed_frame=ed_frame,
        ),
        passes=PassOptions(
            tta=bool(settings.get("tta", True)),
            flip_ensemble=int(settings.get("flip_ensemble", 1)),
        ),
    )
    workers = min(int(settings.get("loader_workers", 1)), threads - 1) if threads > 1 else 0
    return segment_batch(
        manifest,
        eids,
        out_dir,
        table_path,
        segmenter,
        num_workers=max(0, workers),
        progress=bool(settings.get("progress", True)),
        config=config,
        root=input_root(config),
    )


def resolve_convention(setting: str, config: dict | None) -> str:
    """The short axis's endocardial convention for ``segmentation.convention``: ``auto`` is
    ``ukbb`` for a cohort of real scans (``cohort.source: manifest``, the UK Biobank case this
    pipeline reproduces) and ``acdc`` for the synthetic demo, whose phantom has a smooth
    endocardium already (so its tables stay as they were); ``ukbb`` or ``acdc`` by name."""
    if setting == "auto":
        source = ((config or {}).get("cohort") or {}).get("source", "synthetic")
        return "ukbb" if source == "manifest" else "acdc"
    return check_convention(setting)


def without_model(eids, view: ViewSpec, checkpoint, out_dir, table_path, config) -> pd.DataFrame:
    """Every subject recorded as failed, with the reason: ``view`` has no model."""
    reason = f"no {view.name} model: {Path(checkpoint or view.default_checkpoint).name} not found"
    log.warning("%s (%d subjects)", reason, len(eids))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    records = [new_record(view, str(e), reason=reason) for e in eids]
    return write_status(records, table_path, view, config=config, extra={"view": view.name})
