"""Inference step 3, invert: predictions on the network's grid mapped back onto the input's (MONAI
inverse of the preprocessing: bilinear class probabilities when the grids differ, whose argmax
gives smoother boundaries than nearest-neighbour labels; else the network's own labels)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from cardiopheno.segment.predict import Prediction
from cardiopheno.segment.transforms import SlicePipeline

PROBABILITY_CHUNK = 64  # slices of class probabilities inverted per MONAI call


def labels_to_input(
    pipe: SlicePipeline, labels: torch.Tensor, stack, crop_tf, shape: Sequence[int]
) -> np.ndarray:
    """Network-grid labels (``frames*Z x h x w``, frame-major) on the input grid by nearest
    neighbour, as an ``X x Y x Z x frames`` uint8 array (``shape``: the input's X, Y, Z)."""
    x, y, z = shape[:3]
    inv = pipe.invert(labels.float(), stack, crop_tf, mode="nearest").round().to(torch.uint8)
    n = inv.shape[0] // z
    return np.ascontiguousarray(inv.numpy().reshape(n, z, x, y).transpose(2, 3, 1, 0))


def prediction_to_input(
    pipe: SlicePipeline,
    pred: Prediction,
    stack,
    crop_tf,
    shape: Sequence[int],
    classes: Sequence[int],
    smooth: bool,
    keep_probs: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The prediction's labels on the input grid (``X x Y x Z x T`` uint8) and, with
    ``keep_probs``, the ``classes``' probabilities there (``T*Z x len(classes) x X x Y``).
    ``smooth``: labels are the argmax of the inverted probabilities (``pred.probs`` covers every
    class then), else the nearest-neighbour inverse of ``pred.labels``."""
    x, y, z, t = shape
    probs = np.empty((t * z, len(classes), x, y), np.float32) if keep_probs else None
    if not (smooth or keep_probs):
        return labels_to_input(pipe, pred.labels, stack, crop_tf, shape), probs
    argmax = torch.empty((t * z, x, y), dtype=torch.uint8) if smooth else None
    step = PROBABILITY_CHUNK
    for i in range(0, t * z, step):
        chunk = pred.probs[i : i + step]
        if not smooth:
            chunk = chunk[:, list(classes)]
        inv = pipe.invert(chunk.reshape(-1, *chunk.shape[2:]), stack, crop_tf)
        inv = inv.reshape(chunk.shape[0], -1, x, y)
        if smooth:
            argmax[i : i + step] = inv.max(1).indices
        if probs is not None:
            probs[i : i + step] = (inv[:, list(classes)] if smooth else inv).numpy()
    if not smooth:
        return labels_to_input(pipe, pred.labels, stack, crop_tf, shape), probs
    labels = np.ascontiguousarray(argmax.numpy().reshape(t, z, x, y).transpose(2, 3, 1, 0))
    return labels, probs
