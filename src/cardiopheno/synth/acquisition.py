"""Partial-volume drawing and MR acquisition shared by the synthetic views' renderers.

The short-axis cine (:mod:`cardiopheno.synth.imaging`), the long-axis cines
(:mod:`cardiopheno.synth.longaxis`) and the aortic cine (:mod:`cardiopheno.synth.aorta`) draw
their scenes with the same anti-aliased coverages (signed distance to a boundary / pixel size,
clipped to [0, 1]) and acquire them the same way: a smooth coil bias field, a per-scan intensity
scale and Rician noise, rounded to int16.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def cov_disc(rho: np.ndarray, r: np.ndarray, px: float) -> np.ndarray:
    return np.clip((r - rho) * np.float32(1.0 / px) + np.float32(0.5), 0.0, 1.0) * (r > 0)


def ellipse_distance(x, y, rx, ry):
    """First-order signed distance (mm) to the ellipse (x/rx)^2 + (y/ry)^2 = 1; +inf where rx = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        xn, yn = x / rx, y / ry
        q = np.sqrt(xn**2 + yn**2)
        grad = np.sqrt((xn / rx) ** 2 + (yn / ry) ** 2) / np.maximum(q, 1e-6)
        sd = (q - 1.0) / np.maximum(grad, 1e-6)
    return np.where(rx > 0, sd, np.inf)


def cov_distance(sd, px: float, offset: float = 0.0):
    """Anti-aliased coverage of {signed distance <= offset} on pixels of size px."""
    return np.clip(np.float32(0.5) - (sd - np.float32(offset)) * np.float32(1.0 / px), 0.0, 1.0)


def cov_ellipse(x, y, rx, ry, px):
    """Anti-aliased coverage of the ellipse (x/rx)^2 + (y/ry)^2 <= 1."""
    return cov_distance(ellipse_distance(x, y, rx, ry), px)


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return f / max(float(f.std()), 1e-6)


def coil_bias(rng: np.random.Generator, xn: np.ndarray, yn: np.ndarray) -> np.ndarray:
    """Smooth multiplicative receive-coil bias, exp(quadratic) in coordinates normalised to the FOV."""
    coef = rng.normal(0.0, 0.35, 5)
    return np.exp(
        coef[0] * xn + coef[1] * yn + coef[2] * xn**2 + coef[3] * xn * yn + coef[4] * yn**2
    )


def scale_and_noise(
    image: np.ndarray, bias: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, float, float]:
    """Per-subject intensity scale (blood 250-1200) times ``bias`` (over the leading axes), then
    Rician noise of 2.5-5 % of blood; returns (int16 image, scale, noise sigma)."""
    scale = float(rng.uniform(250.0, 1200.0))
    sigma = float(rng.uniform(0.025, 0.05)) * scale
    image *= (scale * bias).astype(np.float32)[..., None]
    return rician_int16(image, sigma, rng), scale, sigma


def rician_int16(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """|image + sigma (n1 + i n2)| rounded to int16 (magnitude image of complex Gaussian noise)."""
    n1 = rng.standard_normal(image.shape, dtype=np.float32)
    n2 = rng.standard_normal(image.shape, dtype=np.float32)
    # in place: the cine is the largest array here
    n1 *= sigma
    n1 += image
    n1 *= n1
    n2 *= sigma
    n2 *= n2
    n1 += n2
    out = np.sqrt(n1, out=n1)
    return np.clip(np.rint(out), 0, 32767).astype(np.int16)


def ellipse_cov_scene(sx, sy, centre, axes, angle, px):
    c, s = np.cos(angle), np.sin(angle)
    x, y = sx - centre[0], sy - centre[1]
    return cov_ellipse(c * x + s * y, -s * x + c * y, axes[0], axes[1], px)


def acquire(image: np.ndarray, rng: np.random.Generator, with_params: bool = False):
    """Acquisition of an ``X x Y x Z x T`` float scene (blood = 1; point spread already applied):
    a smooth coil bias field (quadratic in-plane, linear through the slices), a per-scan intensity
    scale, Rician noise; returns int16 (and the scale and noise sigma with ``with_params``).
    Works in place on ``image``."""
    nx, ny, nz = image.shape[:3]
    xn = (np.arange(nx)[:, None] - nx / 2) / nx
    yn = (np.arange(ny)[None, :] - ny / 2) / ny
    zn = (np.arange(nz) - nz / 2) / nz
    bias2d = coil_bias(rng, xn, yn)
    bias = bias2d[:, :, None] * np.exp(rng.normal(0.0, 0.1) * zn)[None, None, :]
    image, scale, sigma = scale_and_noise(image, bias, rng)
    return (image, scale, sigma) if with_params else image
