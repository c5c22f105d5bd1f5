"""Definitions more than one layer uses, written once (docs/phenotypes.md).

The segment stage reads its uncertainty columns at the frames the phenotypes call ED and ES, and
with the phenotypes' formulas; the synthetic cohort and the Sunnybrook reader state true masses
with the phenotypes' density. They all import these, so the facts cannot drift apart. This module
sits at the bottom of the layers (docs/design.md): it imports nothing of the package.
"""

from __future__ import annotations

import numpy as np

#: Myocardial density in g/mL: LVM = density x myocardial volume at ED (ukbb_cardiac, ACDC).
MYOCARDIAL_DENSITY_G_PER_ML = 1.05

#: How ED is chosen (config ``phenotypes.ed_frame``): the frame of largest LV cavity volume, or
#: frame 0 (UK Biobank's ECG-triggered cines start at ED).
ED_FRAME_MODES = ("max_volume", "first")


def ed_frame(lv_volume: np.ndarray, mode: str = "max_volume") -> int:
    """ED: the frame of maximum LV cavity volume (the first such frame), or frame 0 with
    ``mode="first"``. ``lv_volume`` is one value per frame (voxel counts or mL)."""
    if mode not in ED_FRAME_MODES:
        raise ValueError(f"ed_frame must be one of {ED_FRAME_MODES}, got {mode!r}")
    return 0 if mode == "first" else int(np.argmax(lv_volume))


def es_frame(lv_volume: np.ndarray, labelled: np.ndarray | None = None) -> int:
    """ES: the frame of minimum LV cavity volume among the frames where the LV is labelled
    (``labelled``, by default a volume above 0): a frame without any LV label is unlabelled, not
    systole (a cohort's own segmentations often contour only ED and ES)."""
    volume = np.asarray(lv_volume)
    present = volume > 0 if labelled is None else np.asarray(labelled, dtype=bool)
    return int(np.argmin(np.where(present, volume, np.inf)))


def ejection_fraction(edv, esv):
    """100 (EDV - ESV) / EDV in %, NaN where EDV is not positive; a float for scalars, an array
    for arrays (one value per segmentation pass, say)."""
    edv, esv = np.asarray(edv, dtype=float), np.asarray(esv, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ef = np.where(edv > 0, 100.0 * (edv - esv) / edv, np.nan)
    return float(ef) if ef.ndim == 0 else ef
