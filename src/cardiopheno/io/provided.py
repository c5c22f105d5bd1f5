"""Segmentations a cohort brings (manifest column ``seg_sa``): check they fit the image they label.

A provided segmentation replaces the model's, so QC and phenotypes read it unchanged; it must
therefore have the image's grid (shape and affine) and only the project's labels
(0 background, 1 LV cavity, 2 LV myocardium, 3 RV cavity).
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from cardiopheno import BACKGROUND, LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY


def _shape4(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(shape) + (1,) if len(shape) == 3 else tuple(shape)


def check_provided_segmentation(
    image_path: str | os.PathLike,
    seg_path: str | os.PathLike,
    affine_atol_mm: float = 1e-3,
    allowed: dict[int, str] | None = None,
) -> str:
    """ "" when ``seg_path`` is a valid label map for ``image_path``, else the reason it is not.

    Checks, in order: the file exists and reads; its shape equals the image's (a 3D image or
    label map counts as one frame); the affines agree within ``affine_atol_mm``; the values are
    whole numbers in ``allowed`` (label -> structure; default the short axis's {0, 1, 2, 3});
    at least one voxel is labelled.
    """
    allowed = allowed or {
        LV_CAVITY: "LV cavity",
        LV_MYOCARDIUM: "LV myocardium",
        RV_CAVITY: "RV cavity",
    }
    seg_path, image_path = Path(seg_path), Path(image_path)
    if not seg_path.is_file():
        return f"provided segmentation {seg_path} not found"
    try:
        img = nib.load(image_path)
    except Exception as exc:
        return f"image {image_path} unreadable ({type(exc).__name__}: {exc})"
    try:
        seg = nib.load(seg_path)
        data = np.asanyarray(seg.dataobj)
    except Exception as exc:
        return f"provided segmentation {seg_path} unreadable ({type(exc).__name__}: {exc})"
    if _shape4(seg.shape) != _shape4(img.shape):
        return f"provided segmentation {seg_path} has shape {seg.shape}, image has {img.shape}"
    diff = float(np.max(np.abs(seg.affine - img.affine)))
    if diff > affine_atol_mm:
        return (
            f"provided segmentation {seg_path} is on another grid: affine differs from the "
            f"image's by up to {diff:.4g} mm"
        )
    if data.dtype.kind == "f" and (not np.all(np.isfinite(data)) or np.any(data != np.round(data))):
        return f"provided segmentation {seg_path} holds non-integer values"
    values = set(np.unique(data).astype(np.int64).tolist())
    extra = sorted(values - {BACKGROUND, *allowed})
    if extra:
        names = ", ".join(f"{k} {v}" for k, v in sorted(allowed.items()))
        return (
            f"provided segmentation {seg_path} has labels {extra} outside "
            f"{{{', '.join(str(k) for k in (BACKGROUND, *sorted(allowed)))}}} (0 background, {names})"
        )
    if values <= {BACKGROUND}:
        return f"provided segmentation {seg_path} labels nothing"
    return ""
