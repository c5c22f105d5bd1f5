"""Inference step 2, the passes: how stable the labels are under test-time augmentation
(``tta_dice_*``) and each pass's voxel counts at ED and ES (the ``*_sd`` uncertainties of
:mod:`cardiopheno.segment.uncertainty`).

A pass is one prediction of the ED and ES frames: the flip ensemble's members when there is an
ensemble, else the plain prediction and extra passes on the input flipped along each in-plane axis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from cardiopheno.segment.predict import frame_index
from cardiopheno.views import ViewSpec


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks; 1 when both are empty."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def tta_members(
    predict_labels: Callable[..., torch.Tensor],
    stack,
    net_labels: torch.Tensor,
    frames: list[int],
    z: int,
    axes: Sequence[int],
    reference=None,
) -> list[torch.Tensor]:
    """The prediction at ``frames`` (ED and ES) and one more per axis of ``axes`` on the input
    flipped along it (predicted by ``predict_labels(stack, z, reference=...)``, flipped back):
    the test-time-augmentation passes."""
    idx = frame_index(frames, z)
    x = torch.as_tensor(stack[idx]).as_subclass(torch.Tensor)
    ref = torch.as_tensor(stack[:z] if reference is None else reference)
    ref = ref.as_subclass(torch.Tensor)
    members = [net_labels[idx]]
    for axis in axes:
        pred = predict_labels(
            torch.flip(x, dims=(axis,)), z, reference=torch.flip(ref, dims=(axis,))
        )
        members.append(torch.flip(pred, dims=(axis,)))
    return members


def tta_from_members(
    members: list[torch.Tensor], frames: list[int], z: int, view: ViewSpec
) -> dict[str, float]:
    """Mean Dice per class, at ``frames``, between the unflipped prediction (``members[0]``) and
    each flipped one: how stable the segmentation is under test-time augmentation."""
    idx = frame_index(frames, z)
    base = members[0][idx].numpy()
    scores: dict[str, list[float]] = {view.keys[c]: [] for c in view.classes}
    for member in members[1:]:
        pred = member[idx].numpy()
        for cls in view.classes:
            scores[view.keys[cls]].append(dice(base == cls, pred == cls))
    return {k: float(np.mean(v)) for k, v in scores.items()}


def pass_counts(
    members: list[torch.Tensor],
    frames: list[int],
    ed_es: tuple[int, int],
    to_input_labels: Callable[[torch.Tensor], np.ndarray],
    n_classes: int,
) -> np.ndarray:
    """Voxel counts per label at ED and ES of each pass's own labels (``members``: the ``frames``
    of each pass on the network grid; ``to_input_labels`` maps one onto the input grid and
    post-processes it like the final labels, ``X x Y x Z x len(frames)``): passes x 2 x labels."""
    out = np.zeros((len(members), 2, n_classes), dtype=np.int64)
    for i, member in enumerate(members):
        lab = to_input_labels(member)
        for j, frame in enumerate(ed_es):
            at = lab[..., frames.index(frame)].ravel()
            out[i, j] = np.bincount(at, minlength=n_classes)[:n_classes]
    return out
