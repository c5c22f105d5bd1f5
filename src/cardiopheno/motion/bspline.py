"""The registration's free-form deformation: a cubic B-spline control grid and its dense field.

A field on an H x W pixel grid is ``M_x p M_y^T``: the control grid ``p`` (B, 2, cx, cy) between
two small matrices of B-spline weights (:func:`bspline_matrix`), whose backward is cheap (torch's
bicubic ``interpolate`` backward is ~10x slower on CPU). The same control grid can be evaluated
on images average-pooled by a factor (:func:`average_pool`), so coarse levels run on small images
and hand their control points on unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def bspline_matrix(
    n_pixels: int, spacing: int, factor: int = 1, derivative: bool = False
) -> torch.Tensor:
    """(n_rows, n_control) cubic B-spline weights: control points every ``spacing`` pixels
    from one spacing before pixel 0 to one after the last. The dense field is then
    M_x p M_y^T, two small matrix products whose backward is cheap (torch's bicubic
    ``interpolate`` backward is ~10x slower on CPU).

    With ``factor`` > 1 the rows are the pixels of the image average-pooled by ``factor``
    (ceil(n_pixels / factor) of them, each at its block's centre in full-resolution pixels,
    clamped to the image): the same control grid, evaluated on a coarser pixel grid, so a level
    can run on pooled images and hand its control points on unchanged.

    With ``derivative`` the rows are the weights' derivatives per full-resolution pixel (the
    field's exact derivative at the same points)."""
    n_ctrl = int(math.ceil((n_pixels - 1) / spacing)) + 3
    n_rows = int(math.ceil(n_pixels / factor))
    pos = np.clip(factor * np.arange(n_rows) + (factor - 1) / 2.0, 0.0, n_pixels - 1)
    x = pos / spacing + 1.0  # pixel positions in control units
    i = np.floor(x).astype(int)
    f = x - i
    if derivative:
        w = np.stack(
            [-((1 - f) ** 2) / 2, (3 * f**2 - 4 * f) / 2, (-3 * f**2 + 2 * f + 1) / 2, f**2 / 2]
        ) / spacing  # fmt: skip
    else:
        w = np.stack(
            [
                (1 - f) ** 3 / 6,
                (3 * f**3 - 6 * f**2 + 4) / 6,
                (-3 * f**3 + 3 * f**2 + 3 * f + 1) / 6,
                f**3 / 6,
            ]  # fmt: skip
        )
    m = np.zeros((n_rows, n_ctrl + 1))
    for k in range(4):
        np.add.at(m, (np.arange(n_rows), i - 1 + k), w[k])
    return torch.from_numpy(m[:, :n_ctrl].astype(np.float32))


def dense_field(p: torch.Tensor, mx: torch.Tensor, my: torch.Tensor) -> torch.Tensor:
    """Control grid (B, 2, cx, cy) -> displacement (B, 2, H, W)."""
    return torch.matmul(torch.matmul(mx, p), my.T)


def average_pool(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, C, H, W) average-pooled by ``factor`` (edges replicated up to a multiple of it)."""
    if factor == 1:
        return x
    h, w = x.shape[-2:]
    ph, pw = (-h) % factor, (-w) % factor
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return F.avg_pool2d(x, factor)
