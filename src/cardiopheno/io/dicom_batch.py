"""The workflow's conversion stage: every DICOM input of a batch manifest (the short axis and each
view that has DICOM series names) to NIfTI, and the status table ``results/convert/{batch}.parquet``
(cardiopheno.io.dicom converts one cine)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from cardiopheno.io.dicom import convert_dicom, is_dicom_input
from cardiopheno.io.dicom_headers import DicomConversionError
from cardiopheno.io.dicom_series import DicomOptions, view_series_include
from cardiopheno.io.tables import read_any, write_table
from cardiopheno.views import VIEWS

log = logging.getLogger(__name__)

CONVERT_COLUMNS = {  # every column of results/convert/{batch}.parquet (none is a float)
    "eid": "subject key",
    "sa": "absolute path of the 4D short-axis NIfTI (converted, or the manifest's own); '' on failure",
    "seg_sa": "provided segmentation from the manifest, passed through ('' when none)",
    "source": "nifti | dicom_folder | dicom_zip: what the manifest's sa pointed at",
    "ok": "True when sa is a usable NIfTI path",
    "reason": "why conversion failed ('' when ok); never contains identifying header values",
    "frame_interval_source": "trigger_time | nominal_interval | unknown ('' when not converted)",
}
VIEW_CONVERT_COLUMNS = {  # after those, for each other view the manifest has
    "<view>": "la_2ch, la_4ch, ao: absolute NIfTI path (converted, or the manifest's own; '' on failure)",
    "<view>_reason": "why that view's conversion failed ('' when it did not)",
    "<provided>": "the view's provided-segmentation columns, passed through",
}


def convert_batch(
    manifest: pd.DataFrame,
    out_dir: str | os.PathLike,
    options: DicomOptions | None = None,
) -> pd.DataFrame:
    """Convert every DICOM ``sa`` of a (batch of a) manifest with absolute paths.

    Returns one row per manifest row: ``eid``, ``sa`` (absolute NIfTI path: the converted file
    ``out_dir/{eid}/sa.nii.gz``, or the manifest's own NIfTI), ``seg_sa`` (passed through, "" if
    none), ``source`` ("nifti" | "dicom_folder" | "dicom_zip"), ``ok``, ``reason`` ("" when ok),
    ``frame_interval_source``. One subject's failure is a row with ``ok`` False, never an exception.
    """
    out_dir = Path(out_dir)
    options = options or DicomOptions()
    views = [v for v in view_series_include() if v in manifest.columns]
    rows = []
    for rec in manifest.to_dict("records"):
        row = _convert_short_axis(rec, out_dir, options)
        for view in views:
            row.update(_convert_view(rec, view, out_dir, options.for_view(view)))
        rows.append(row)
    extra = [c for v in views for c in (v, f"{v}_reason", *VIEWS[v].provided)]
    return pd.DataFrame(rows, columns=[*CONVERT_COLUMNS, *extra])


def _convert_short_axis(rec: Mapping, out_dir: Path, options: DicomOptions) -> dict:
    """The short axis's entry of the conversion table (the CONVERT_COLUMNS)."""
    eid = str(rec["eid"])
    sa = str(rec.get("sa", "") or "")
    row = {"eid": eid, "sa": sa, "seg_sa": _text(rec.get("seg_sa", "")), "source": "nifti"}
    row.update(ok=True, reason="", frame_interval_source="")
    if sa and is_dicom_input(sa):
        row["source"] = "dicom_folder" if Path(sa).is_dir() else "dicom_zip"
        target = (out_dir / eid / "sa.nii.gz").resolve()
        try:
            cine = convert_dicom(sa, target, options, label=eid)
            row.update(sa=str(target), frame_interval_source=cine.frame_interval_source)
        except DicomConversionError as exc:
            reason = str(exc)
            if not reason.startswith(eid):
                reason = f"{eid}: {reason}"
            log.warning("conversion failed: %s", reason)
            row.update(sa="", ok=False, reason=reason)
    elif not sa:
        row.update(ok=False, reason=f"{eid}: empty sa path")
    return row


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _convert_view(rec: Mapping, view: str, out_dir: Path, options: DicomOptions) -> dict:
    """Another view's entry of the conversion table: its NIfTI path (converted, or the
    manifest's own), ``<view>_reason`` when conversion failed, provided segmentations passed on."""
    eid, path = str(rec["eid"]), _text(rec.get(view))
    provided = {c: _text(rec.get(c)) for c in VIEWS[view].provided}
    out = {view: path, f"{view}_reason": "", **provided}
    if path and is_dicom_input(path):
        target = (out_dir / eid / f"{view}.nii.gz").resolve()
        try:
            convert_dicom(path, target, options, label=eid)
            out[view] = str(target)
        except DicomConversionError as exc:
            reason = str(exc) if str(exc).startswith(eid) else f"{eid}: {exc}"
            log.warning("%s conversion failed: %s", view, reason)
            out.update({view: "", f"{view}_reason": reason})
    return out


def convert_batch_files(
    manifest_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    table_path: str | os.PathLike,
    dicom_config: Mapping | None = None,
    config: Mapping | None = None,
) -> pd.DataFrame:
    """Workflow entry: convert one batch manifest's DICOM inputs and write its status table."""
    manifest = read_any(manifest_path)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    table = convert_batch(manifest, out_dir, DicomOptions.from_config(dicom_config))
    write_table(
        table,
        table_path,
        config=config,
        extra={"columns": json.dumps({**CONVERT_COLUMNS, **VIEW_CONVERT_COLUMNS})},
    )
    n_dicom = int((table["source"] != "nifti").sum())
    log.info(
        "%d subjects, %d from DICOM, %d failed", len(table), n_dicom, int((~table["ok"]).sum())
    )
    return table
