"""The training augmentation (MONAI dictionary transforms on ``{"image", "label"}`` slices):
flips, rotation, scaling, translation, intensity scale/shift, gamma, noise, bias field and blur,
or only the label-exact moves, or none (:data:`AUGMENT_MODES`)."""

from __future__ import annotations

import functools
import math

import torch
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandAffined,
    RandBiasFieldd,
    RandFlipd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandLambdad,
    RandRotate90d,
    RandScaleIntensityd,
    RandShiftIntensityd,
    RandSpatialCropd,
    ToTensord,
)

AUGMENT_MODES = ("full", "exact", "none")


def reverse_slices(image, n: int) -> torch.Tensor:
    """The first ``n`` channels (a 2.5D input's slices) in reverse order; others stay."""
    image = torch.as_tensor(image)
    return torch.cat([torch.flip(image[:n], dims=(0,)), image[n:]])


def augment_mode(augment: bool | str) -> str:
    """``augment`` as one of :data:`AUGMENT_MODES` (True/False: "full"/"none", older configs)."""
    mode = {True: "full", False: "none"}.get(augment, augment)
    if mode not in AUGMENT_MODES:
        raise ValueError(f"augment must be one of {', '.join(AUGMENT_MODES)}, got {augment!r}")
    return mode


def train_transforms(
    augment: bool | str = "full",
    patch: int | None = None,
    symmetric: bool = True,
    soft: bool = False,
    context: int = 0,
    reference: bool = False,
    canonical: bool = False,
) -> Compose:
    """Augmentation of ``{"image": CxHxW float in [0,1], "label": 1xHxW}`` dicts (MONAI; C = 1, or
    the slice and its neighbours for a 2.5D network); with
    ``patch``, the affine resamples straight onto a ``patch`` x ``patch`` window (a grid of the
    output's size: about half of training time went into full-size grids), shifted by up to a
    quarter patch (cheaper steps on large fields, and partly visible structures to learn from).
    Without ``symmetric`` (labels tied to the position in the chest, as the aorta's) no flips and
    rotations of at most 15 degrees. With ``soft``, the label is ``C x H x W`` shares and is
    interpolated bilinearly, so a structure's summed share scales with the image. With ``context``
    (2.5D input: the image's channels are neighbouring slices) their order is reversed half of
    the time, since stacks run base to apex on some scanners and apex to base on others. With
    ``reference`` the last channel is the slice at the first frame: it moves with the others.
    With ``canonical`` (a view turned into one orientation by its affine, segment.orientation)
    mirror flips along the first axis only and rotations of at most 45 degrees.

    ``augment="exact"`` keeps only the moves that map pixels onto pixels (flips, quarter turns,
    the patch's integer position), so no label boundary is re-drawn by interpolation and no
    intensity changes: a last, low-learning-rate stage that fits the labels as drawn."""
    keys = ["image", "label"]
    mode = augment_mode(augment)
    if mode == "none":
        return Compose([ToTensord(keys=keys)])
    crop = (
        [RandSpatialCropd(keys=keys, roi_size=(patch, patch), random_size=False)] if patch else []
    )
    flips = _flips(keys, symmetric, canonical, context)
    if mode == "exact":
        turns = (
            [RandRotate90d(keys=keys, prob=0.75, max_k=3)] if symmetric and not canonical else []
        )
        return Compose([*flips, *turns, *crop, ToTensord(keys=keys)])
    return Compose(
        [
            *flips,
            _affine(keys, patch, symmetric, soft, canonical),
            *crop,
            RandBiasFieldd(keys="image", prob=0.3, coeff_range=(0.0, 0.3)),
            RandAdjustContrastd(keys="image", prob=0.3, gamma=(0.6, 1.6)),
            RandScaleIntensityd(keys="image", prob=0.3, factors=0.2),
            RandShiftIntensityd(keys="image", prob=0.3, offsets=0.1),
            RandGaussianSmoothd(keys="image", prob=0.2, sigma_x=(0.3, 1.0), sigma_y=(0.3, 1.0)),
            RandGaussianNoised(keys="image", prob=0.3, std=0.05),
            ToTensord(keys=keys),
        ]
    )


def _flips(keys: list[str], symmetric: bool, canonical: bool, context: int) -> list:
    """The mirror flips a view's labels survive (none without ``symmetric``, the first axis only
    when ``canonical``) and, for a 2.5D input, the reversal of its slices' order."""
    flip_axes = ((0,) if canonical else (0, 1)) if symmetric else ()
    flips = [RandFlipd(keys=keys, prob=0.5, spatial_axis=a) for a in flip_axes]
    if context:
        reverse = functools.partial(reverse_slices, n=2 * context + 1)
        flips.append(RandLambdad(keys="image", func=reverse, prob=0.5))
    return flips


def _affine(
    keys: list[str], patch: int | None, symmetric: bool, soft: bool, canonical: bool
) -> RandAffined:
    """The random rotation, scaling and translation (onto the ``patch`` window when given)."""
    return RandAffined(
        keys=keys,
        prob=0.9,
        rotate_range=(math.pi / 4 if canonical else math.pi if symmetric else math.pi / 12,),
        scale_range=(0.3, 0.3),
        translate_range=(patch // 4, patch // 4) if patch else (20, 20),
        spatial_size=(patch, patch) if patch else None,
        mode=("bilinear", "bilinear" if soft else "nearest"),
        padding_mode="zeros",
    )
