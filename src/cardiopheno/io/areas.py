"""Sub-pixel area curves stored beside a label map: ``<stem>_areas.parquet`` next to
``<stem>.nii.gz``.

A model trained on partial-volume targets (the aortic model) measures each structure's area per
frame from its probabilities, more finely than a pixel count of its labels can
(:attr:`cardiopheno.segment.infer.Segmentation.areas`). The segmentation stage writes those
curves here (one row per frame, a column ``area_mm2_<label>`` per label value) and the
phenotype families read them in place of pixel counts. Label maps without such a file (provided
segmentations, other models) are measured by counting pixels.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cardiopheno.io.atomic import atomic_path

log = logging.getLogger(__name__)


def areas_path(seg_path: str | os.PathLike) -> Path:
    """The area file of a label map: ``seg_ao.nii.gz`` -> ``seg_ao_areas.parquet``."""
    seg_path = Path(seg_path)
    stem = seg_path.name.removesuffix(".gz").removesuffix(".nii")
    return seg_path.with_name(f"{stem}_areas.parquet")


def write_areas(seg_path: str | os.PathLike, areas: np.ndarray, labels: Sequence[int]) -> Path:
    """Write ``areas`` (frames x len(labels), mm2) beside ``seg_path``, atomically."""
    areas = np.asarray(areas, dtype=float)
    table = pd.DataFrame({"frame": np.arange(areas.shape[0])})
    for i, label in enumerate(labels):
        table[f"area_mm2_{int(label)}"] = areas[:, i]
    path = areas_path(seg_path)
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
    return path


def read_areas(seg_path: str | os.PathLike, n_frames: int) -> dict[int, np.ndarray] | None:
    """label -> per-frame area (mm2) from the area file beside ``seg_path``; None when there is
    none, or when it cannot be used (unreadable, or a frame count other than the label map's
    ``n_frames``: not these labels' areas): then a warning, and the labels are counted."""
    path = areas_path(seg_path)
    if not path.is_file():
        return None
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        log.warning("%s ignored, pixels are counted instead: %s", path, exc)
        return None
    if len(table) != n_frames:
        log.warning(
            "%s ignored, pixels are counted instead: %d frames of areas, %d in the labels",
            path,
            len(table),
            n_frames,
        )
        return None
    return {
        int(c.removeprefix("area_mm2_")): table[c].to_numpy(float)
        for c in table.columns
        if c.startswith("area_mm2_")
    }


def remove_areas(seg_path: str | os.PathLike) -> None:
    """Delete the area file beside ``seg_path`` (when its labels are replaced by others)."""
    areas_path(seg_path).unlink(missing_ok=True)
