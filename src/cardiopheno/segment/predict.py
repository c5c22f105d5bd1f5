"""Inference step 1, predict: the network on a stack of preprocessed slices, in batches, with an
optional flip ensemble (test-time augmentation whose members' probabilities are averaged)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from cardiopheno.segment.network import NetworkConfig
from cardiopheno.segment.transforms import context_index

# Flipped copies of the input averaged with the prediction (``flip_ensemble`` = how many, in this
# order): both in-plane axes (a 180-degree rotation), then each axis alone. Dims of N x H x W.
ENSEMBLE_FLIPS = ((1, 2), (1,), (2,))


@dataclass
class Prediction:
    """The network's output on a slice stack (``N x H x W``)."""

    labels: torch.Tensor  # N x H x W uint8: argmax of the (ensemble-mean) class probabilities
    probs: torch.Tensor | None = None  # N x 4 x H x W float32 mean softmax, when asked for
    members: list[torch.Tensor] = field(default_factory=list)  # argmax of each ensemble member


def argmax_labels(values: torch.Tensor) -> torch.Tensor:
    """Class index over dim 1 as uint8 (``max().indices``: argmax is 6x slower on the CPU)."""
    return values.max(1).indices.to(torch.uint8)


def frame_index(frames: Sequence[int], z: int) -> torch.Tensor:
    """Rows of a frame-major (T*Z) stack that hold ``frames``."""
    return torch.cat([torch.arange(f * z, (f + 1) * z) for f in frames])


@torch.inference_mode()
def predict_stack(
    forward: Callable[[torch.Tensor], torch.Tensor],
    net_cfg: NetworkConfig,
    stack: torch.Tensor,
    slice_batch: int,
    device: torch.device,
    probabilities: bool = False,
    flips: Sequence = (),
    slices_per_frame: int | None = None,
    reference=None,
) -> Prediction:
    """``forward`` (the network, logits) on ``N x H x W`` preprocessed slices, ``slice_batch``
    slices per call.

    ``N`` is frames x ``slices_per_frame`` slices, frame by frame (default: one frame); a 2.5D
    network (``net_cfg.context``) sees each slice with its neighbours in the same frame, and a
    network with a ``reference`` channel each slice's twin in the cine's first frame
    (``reference``, ``slices_per_frame x H x W``; default: the stack's first frame).

    With ``flips`` (dims of ``N x H x W``), the input is also flipped along each, predicted and
    flipped back, and the class probabilities of all these members are averaged (a
    test-time-augmentation ensemble: it cancels prediction noise that is not tied to the image's
    orientation). ``members`` then holds each member's own labels (the unflipped prediction
    first) for the stability measure of :func:`cardiopheno.segment.ensemble.tta_from_members`.
    """
    x_all = torch.as_tensor(stack).as_subclass(torch.Tensor)
    n = x_all.shape[0]
    z = slices_per_frame or max(n, 1)
    context = torch.from_numpy(context_index(np.arange(n) // z, net_cfg.context))
    if net_cfg.reference:  # each slice's twin in the first frame, a last channel
        ref = x_all[:z] if reference is None else torch.as_tensor(reference)
        ref = ref.as_subclass(torch.Tensor)
    labels, probs, members = [], [], [[] for _ in range(len(flips) + 1 if flips else 0)]
    for start in range(0, n, slice_batch):
        end = start + slice_batch
        x = x_all[context[start:end]]
        if net_cfg.reference:
            x = torch.cat([x, ref[torch.arange(start, min(end, n)) % z, None]], dim=1)
        x = x.to(device, non_blocking=True)
        out = forward(x)
        if flips or probabilities:
            out = torch.softmax(out, dim=1)
        if flips:
            members[0].append(argmax_labels(out).cpu())
            for i, dims in enumerate(flips, start=1):
                d = tuple(a + 1 for a in dims)  # N x 1 x H x W
                q = torch.flip(torch.softmax(forward(torch.flip(x, d)), dim=1), d)
                members[i].append(argmax_labels(q).cpu())
                out += q
            out /= len(flips) + 1
        labels.append(argmax_labels(out).cpu())
        if probabilities:
            probs.append(out.cpu())
    if not labels:
        return Prediction(torch.empty((0, *x_all.shape[1:]), dtype=torch.uint8))
    return Prediction(
        torch.cat(labels),
        torch.cat(probs) if probabilities else None,
        [torch.cat(m) for m in members],
    )
