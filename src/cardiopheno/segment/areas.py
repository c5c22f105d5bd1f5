"""Inference step 5, areas: each structure's sub-pixel area per frame from the class probabilities
of a model trained on partial-volume targets (its probability of a pixel estimates the pixel's
share of the structure), summed near the structure's final label. Written beside the label map
(:mod:`cardiopheno.io.areas`) and read by the phenotypes in place of pixel counts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

# sub-pixel areas sum a structure's probability over its final label grown by this many pixels
# in-plane: partial-volume pixels lie within one pixel of the share >= 0.5 boundary
AREA_MARGIN_PX = 2


def subpixel_areas(
    probs: np.ndarray, labels: np.ndarray, classes: Sequence[int], pixel_area_mm2: float
) -> np.ndarray:
    """Per-frame area (mm2) of each class: its probability (``slices x frames x len(classes) x
    X x Y`` on the input grid, in ``classes``' order) summed over its label in ``labels``
    (``X x Y x slices x frames``) grown by :data:`AREA_MARGIN_PX` in-plane, so stray probability
    elsewhere is not counted."""
    grow = np.zeros((1, 1, 3, 3), dtype=bool)
    grow[0, 0] = ndimage.generate_binary_structure(2, 1)
    per_slice = labels.transpose(2, 3, 0, 1)  # slices x frames x X x Y, as probs
    out = np.zeros((labels.shape[3], len(classes)))
    for i, c in enumerate(classes):
        near = ndimage.binary_dilation(per_slice == c, grow, iterations=AREA_MARGIN_PX)
        share = np.where(near, probs[:, :, i], 0.0)
        out[:, i] = share.sum(axis=(0, 2, 3)) * pixel_area_mm2
    return out


def frame_areas(
    probs: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[int],
    spacing: Sequence[float],
) -> np.ndarray:
    """:func:`subpixel_areas` of frame-major probabilities (``T*Z x len(classes) x X x Y``, as
    :func:`cardiopheno.segment.invert.prediction_to_input` gives them) on pixels of ``spacing``
    (in-plane, mm)."""
    z, t = labels.shape[2], labels.shape[3]
    per_slice = probs.reshape(t, z, *probs.shape[1:]).transpose(1, 0, 2, 3, 4)
    return subpixel_areas(per_slice, labels, classes, spacing[0] * spacing[1])
