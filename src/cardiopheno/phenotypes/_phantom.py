"""Label-map phantoms with known geometry, for tests, QC checks and the speed benchmark.

Not a family (the registry skips modules starting with "_"). A phantom is a stack of concentric
discs: LV cavity of radius ``r_cavity`` (per slice and frame), myocardial annulus of width
``wall_mm`` (thicker by ``septal_extra_mm`` within +-60 degrees of the septum), and an RV
crescent hugging the septal epicardium. Its analytic volumes are sums of pi r^2 x slice spacing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY


def lv_volume_fraction(n_frames: int, es_fraction: float = 0.35) -> np.ndarray:
    """A cyclic LV filling shape in [0, 1]: 1 at ED (frame 0), 0 at ES, then E wave, diastasis,
    A wave back to 1."""
    t = np.arange(n_frames) / n_frames
    f = np.empty(n_frames)
    sys = t <= es_fraction
    f[sys] = 0.5 * (1 + np.cos(np.pi * t[sys] / es_fraction))
    d = ~sys
    td = t[d]
    e_end = es_fraction + 0.2
    early = 0.75 * 0.5 * (1 - np.cos(np.pi * np.clip((td - es_fraction) / 0.2, 0, 1)))
    a_start = 0.8
    atrial = 0.25 * 0.5 * (1 - np.cos(np.pi * np.clip((td - a_start) / (1 - a_start), 0, 1)))
    f[d] = early + atrial
    del e_end
    return f


@dataclass(frozen=True)
class Phantom:
    labels: np.ndarray  # X, Y, Z, T uint8
    spacing: tuple[float, float, float]
    frame_interval_ms: float
    cavity_radius_mm: np.ndarray  # (Z, T)
    wall_mm: float
    septal_extra_mm: float
    septum_angle: float  # radians, direction of the septum from the LV centre (x towards y)

    def analytic_cavity_volume_ml(self) -> np.ndarray:
        """Per-frame LV cavity volume of the continuous shape, mL."""
        return (np.pi * self.cavity_radius_mm**2).sum(axis=0) * self.spacing[2] / 1000.0


def make_phantom(
    shape_xy: tuple[int, int] = (96, 96),
    n_slices: int = 10,
    n_frames: int = 50,
    spacing: tuple[float, float, float] = (1.8, 1.8, 8.0),
    frame_interval_ms: float = 20.0,
    r_ed_mm: float = 25.0,
    r_es_mm: float = 18.0,
    wall_mm: float = 8.0,
    septal_extra_mm: float = 0.0,
    septum_angle: float = math.pi,
    apex_taper: bool = True,
    rv: bool = True,
    empty_basal_slices: int = 1,
) -> Phantom:
    """Build a phantom (see the module docstring); slice 0 is basal, the last slice apical.

    The first ``empty_basal_slices`` slices lie above the base (atria: left unlabelled), as a
    well-planned stack starts above the mitral valve.
    """
    nx, ny = shape_xy
    sx, sy, _ = spacing
    x = (np.arange(nx) - (nx - 1) / 2) * sx
    y = (np.arange(ny) - (ny - 1) / 2) * sy
    xx, yy = np.meshgrid(x, y, indexing="ij")
    rr = np.hypot(xx, yy)
    phi = np.angle(np.exp(1j * (np.arctan2(yy, xx) - septum_angle)))
    septal = np.abs(phi) <= np.pi / 3
    frac = lv_volume_fraction(n_frames)
    r_t = r_es_mm + (r_ed_mm - r_es_mm) * frac
    # taper towards the apex: a half-ellipsoid profile over the slices (not to zero)
    n_heart = n_slices - empty_basal_slices
    z = np.arange(n_heart)
    profile = np.sqrt(1 - (z / n_heart) ** 2) if apex_taper else np.ones(n_heart)
    profile = np.concatenate([np.zeros(empty_basal_slices), profile])
    radius = profile[:, None] * r_t[None, :]  # (Z, T)
    labels = np.zeros((nx, ny, n_slices, n_frames), dtype=np.uint8, order="F")
    for t in range(n_frames):
        for k in range(empty_basal_slices, n_slices):
            r = radius[k, t]
            outer = r + wall_mm + np.where(septal, septal_extra_mm, 0.0)
            sl = np.zeros((nx, ny), np.uint8)
            sl[rr < outer] = LV_MYOCARDIUM
            sl[rr < r] = LV_CAVITY
            if rv:
                rv_in = r + wall_mm + septal_extra_mm
                rv_mask = (rr >= rv_in) & (rr < rv_in + 0.6 * r + 6) & (np.abs(phi) <= 1.2)
                sl[rv_mask & (sl == 0)] = RV_CAVITY
            labels[..., k, t] = sl
    return Phantom(
        labels, spacing, frame_interval_ms, radius, wall_mm, septal_extra_mm, septum_angle
    )


def phantom_image(labels: np.ndarray, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    """A cine-like float32 image of a label map: blood bright, myocardium dark, plus noise."""
    rng = np.random.default_rng(seed)
    lut = np.array([0.15, 0.9, 0.35, 0.85], dtype=np.float32)
    img = lut[labels] + rng.normal(0.0, noise, labels.shape).astype(np.float32)
    return np.clip(img, 0.0, None)
