"""Render one synthetic transverse aortic cine (UK Biobank's ``ao`` view) with known distensibility.

The slice is transverse at the level of the pulmonary trunk: the ascending aorta (AAo, label 1)
anterior, the descending aorta (DAo, label 2) posterior-left beside the spine, the pulmonary trunk
with its right and left branches, the superior vena cava, main bronchi, oesophagus, lungs, chest
wall, sternum, vertebra and paraspinal muscles, in bSSFP-like contrast (bright blood).

The vessels are compliant: each lumen area follows the central pressure wave,
``A(t) = A_min (1 + D x central_pp x w(t) / 1000)``, with ``w`` a pressure-waveform shape in [0, 1]
(:class:`PressureWave`: a short delay after the R wave, a fast systolic upstroke, a dicrotic notch
at the end of ejection, a diastolic decay), reaching the descending aorta later by the pulse
transit time. So the distensibility ``D = (A_max - A_min) / (A_min x PP)`` (10^-3 mmHg^-1) of the
population table (:func:`cardiopheno.synth.population.aorta_truth`) is the truth, exactly.

Partial volume is in-plane only (both aortae cross the slice nearly perpendicularly): an
anti-aliased coverage of each elliptic lumen and its wall (the short-axis phantom's helpers);
labels are the lumen coverage >= 0.5. The image is then blurred slightly (point spread),
multiplied by a smooth coil bias field and a per-subject intensity scale, and given Rician noise,
with the short-axis renderer's helpers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from cardiopheno import ASCENDING_AORTA, DESCENDING_AORTA
from cardiopheno.io.tables import ColumnSpec
from cardiopheno.synth.acquisition import (
    coil_bias,
    ellipse_cov_scene,
    scale_and_noise,
    smooth_field,
)

SLICE_THICKNESS_MM = 8.0  # assumed, as the short-axis cine's
N_FRAMES = 100  # UK Biobank's aortic cine
VESSELS = {"AAo": ASCENDING_AORTA, "DAo": DESCENDING_AORTA}
# Stated agreement of the truth labels' areas with the analytic ones (relative, worst frame):
# pixel quantisation of a ~15 mm radius disc on 1.6-1.8 mm pixels.
AREA_TOLERANCE = 0.04


@dataclass
class AortaSubject:
    """A rendered aortic cine: image (int16 X x Y x 1 x T), labels (uint8, same grid), truth, and
    ``coverage`` (float16 X x Y x 1 x T x 2): the share of each pixel inside the AAo and DAo lumen
    (the labels are coverage >= 0.5; its sum x pixel area is the partial-volume area), the target
    of sub-pixel area training (:func:`cardiopheno.segment.data.aorta_volumes`)."""

    image: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    zooms: tuple[float, float, float, float]
    truth: dict
    curves: pd.DataFrame
    coverage: np.ndarray


@dataclass(frozen=True)
class PressureWave:
    """Normalised central pressure shape w(t) in [0, 1] over one RR interval (t from the R wave).

    0 at the foot of the wave (``onset_ms`` after the R wave), 1 at the systolic peak
    ``upstroke_ms`` later; falls to ``notch_level`` at the end of ejection (``ejection_ms`` after
    the foot), where the dicrotic notch dips and rebounds, then decays exponentially (time
    constant ``tau_ms``) back to 0 at the next foot.
    """

    rr_ms: float
    onset_ms: float = 75.0
    upstroke_ms: float = 95.0
    ejection_ms: float = 300.0
    notch_level: float = 0.6
    notch_depth: float = 0.06
    tau_ms: float = 1000.0

    def _raw(self, t_ms: np.ndarray) -> np.ndarray:
        s = np.mod(np.asarray(t_ms, dtype=float) - self.onset_ms, self.rr_ms)
        up, ej, lvl = self.upstroke_ms, self.ejection_ms, self.notch_level
        rise = np.sin(0.5 * np.pi * np.clip(s / up, 0.0, 1.0)) ** 2
        fall = lvl + (1.0 - lvl) * np.cos(0.5 * np.pi * np.clip((s - up) / (ej - up), 0, 1)) ** 2
        end = np.exp(-(self.rr_ms - ej) / self.tau_ms)
        decay = lvl * (np.exp(-(s - ej) / self.tau_ms) - end) / (1.0 - end)
        w = np.where(s < up, rise, np.where(s < ej, fall, decay))
        # dicrotic notch: a short dip at aortic valve closure and the rebound wave after it
        w = w - self.notch_depth * np.exp(-(((s - ej) / 10.0) ** 2))
        return w + 0.7 * self.notch_depth * np.exp(-(((s - ej - 30.0) / 15.0) ** 2))

    def __call__(self, t_ms: np.ndarray) -> np.ndarray:
        dense = self._raw(np.linspace(0.0, self.rr_ms, 4001))
        lo, hi = float(dense.min()), float(dense.max())
        return np.clip((self._raw(t_ms) - lo) / (hi - lo), 0.0, 1.0)


def _waves(row: pd.Series, rng: np.random.Generator, rr_ms: float) -> dict[str, PressureWave]:
    """AAo and DAo waveforms; the DAo's foot arrives later by the arch's pulse transit time."""
    hr = 60000.0 / rr_ms
    lvet = float(np.clip(413.0 - 1.7 * hr + rng.normal(0.0, 15.0), 180.0, 0.55 * rr_ms))  # Weissler
    onset = float(rng.uniform(60.0, 90.0))  # pre-ejection period
    upstroke = float(np.clip(rng.uniform(80.0, 110.0), 40.0, 0.5 * lvet))
    common = {
        "rr_ms": rr_ms,
        "upstroke_ms": upstroke,
        "ejection_ms": lvet,
        "notch_level": float(rng.uniform(0.5, 0.7)),
        "notch_depth": float(rng.uniform(0.03, 0.08)),
    }
    # pulse wave velocity rises with age (about 4.5 m/s at 45 to 8 at 80); path 18-24 cm
    pwv = max(3.0, 4.5 + 0.1 * (float(row["age"]) - 45.0) + rng.normal(0.0, 0.5))
    transit = float(rng.uniform(180.0, 240.0)) / pwv  # mm / (m/s) = ms
    return {
        "AAo": PressureWave(onset_ms=onset, **common),
        "DAo": PressureWave(onset_ms=onset + transit, **common),
    }


def _unit(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)])


def _layout(row: pd.Series, rng: np.random.Generator, r_max: dict[str, float]) -> dict:
    """Scene geometry in mm (x patient left, y posterior, origin mid-mediastinum).

    Neighbours are placed from the vessels' largest radii so nothing overlaps the aortae in any
    frame: the pulmonary trunk left of the AAo, its right branch behind it, the SVC to its right,
    the DAo left-anterior of the vertebral body.
    """
    aao = np.array([rng.uniform(-10.0, 2.0), rng.uniform(-42.0, -30.0)])
    r_pa = float(rng.uniform(12.0, 15.0))
    pa = aao + (r_max["AAo"] + r_pa + 2.5) * _unit(rng.uniform(-0.25, 0.1))
    r_svc = float(rng.uniform(8.0, 11.0))
    svc = aao + (r_max["AAo"] + r_svc + 4.0) * _unit(np.pi + rng.uniform(-0.35, -0.05))
    rpa = np.array([aao[0] - 12.0, aao[1] + r_max["AAo"] + 14.0])
    spine = np.array([rng.uniform(-4.0, 4.0), rng.uniform(52.0, 60.0)])
    r_spine = float(rng.uniform(15.0, 18.0))
    dao = spine + (r_spine + r_max["DAo"] + 3.0) * _unit(-rng.uniform(0.45, 0.8))
    body_ay = float(rng.uniform(100.0, 115.0))
    return {
        "body_centre": (rng.uniform(-5.0, 5.0), rng.uniform(12.0, 20.0)),
        "body_axes": (rng.uniform(140.0, 165.0), body_ay),
        "body_angle": rng.uniform(-0.08, 0.08),
        "fat_mm": rng.uniform(8.0, 22.0),
        "lungs": [
            ((rng.uniform(-90, -80), rng.uniform(5, 20)), (rng.uniform(50, 58), 85.0), 0.15),
            ((rng.uniform(80, 90), rng.uniform(10, 25)), (rng.uniform(48, 56), 85.0), -0.15),
        ],
        "mediastinum": ((0.0, 0.0), (rng.uniform(48, 58), 75.0)),
        "sternum": (rng.uniform(-3.0, 3.0), -body_ay + 30.0),
        "AAo": aao,
        "DAo": dao,
        "pa": (pa, r_pa),
        "lpa": (pa + np.array([18.0, 20.0]), (20.0, 10.0), 0.9),
        "rpa": (rpa, (40.0, 9.0), -0.1),
        "svc": (svc, r_svc),
        "bronchi": [(np.array([16.0, 14.0]), 7.5), (np.array([-18.0, 12.0]), 7.5)],
        "oesophagus": spine + (r_spine + 9.0) * _unit(-np.pi / 2 - rng.uniform(0.15, 0.35)),
        "spine": (spine, r_spine),
        "motion": {  # in-plane displacement at peak pressure, mm, and its direction
            "AAo": (rng.uniform(1.0, 3.0), rng.uniform(0.0, 2 * np.pi)),
            "DAo": (rng.uniform(0.2, 1.0), rng.uniform(0.0, 2 * np.pi)),
        },
    }


def _background(sx, sy, px: float, tissue: dict, tex: np.ndarray, p: dict) -> np.ndarray:
    """Static anatomy of the slice (everything but the two aortae)."""
    img = np.zeros(sx.shape, np.float32)

    def paint(centre, axes, angle, value, weight=1.0):
        nonlocal img
        cov = ellipse_cov_scene(sx, sy, centre, axes, angle, px) * weight
        img = img * (1.0 - cov) + value * cov

    bc, ba, ang = p["body_centre"], p["body_axes"], p["body_angle"]
    paint(bc, ba, ang, tissue["fat"])
    fat = p["fat_mm"]
    paint(bc, (ba[0] - fat, ba[1] - fat), ang, tissue["muscle"])
    inner = (ba[0] - fat - 14.0, ba[1] - fat - 14.0)  # inside the ribs
    paint(bc, inner, ang, tissue["soft"])
    thorax = ellipse_cov_scene(sx, sy, bc, inner, ang, px)
    for centre, axes, angle in p["lungs"]:
        paint(centre, axes, angle, tissue["lung"], thorax)
    m_centre, m_axes = p["mediastinum"]
    paint(m_centre, m_axes, 0.0, tissue["soft"])
    patchy = np.clip(1.5 * (tex[1] - 0.3), 0.0, 1.0)  # mediastinal fat around the great vessels
    paint(m_centre, m_axes, 0.0, tissue["fat"], patchy)
    paint(p["sternum"], (14.0, 7.0), 0.0, tissue["bone"])
    paint(p["sternum"], (10.0, 4.0), 0.0, tissue["marrow"])
    spine, r_spine = p["spine"]
    paint(spine, (r_spine, r_spine), 0.0, tissue["bone"])
    paint(spine, (r_spine - 5.0, r_spine - 5.0), 0.0, tissue["marrow"])
    paint(spine + np.array([0.0, r_spine + 8.0]), (7.0, 6.0), 0.0, tissue["csf"])
    for side in (-1.0, 1.0):  # paraspinal muscles
        paint(spine + np.array([side * 28.0, r_spine + 14.0]), (20.0, 15.0), 0.0, tissue["muscle"])
    paint(p["oesophagus"], (8.0, 6.0), 0.3, tissue["muscle"])
    paint(p["oesophagus"], (2.5, 1.5), 0.3, tissue["air"])
    for centre, r in p["bronchi"]:
        paint(centre, (r + 1.5, r + 1.5), 0.0, tissue["muscle"])  # cartilage wall
        paint(centre, (r, r * 0.85), 0.0, tissue["air"])
    pa, r_pa = p["pa"]
    for centre, axes, angle in (p["lpa"], p["rpa"], (pa, (r_pa, r_pa), 0.0)):
        paint(centre, axes, angle, tissue["pa_blood"])
    svc, r_svc = p["svc"]
    paint(svc, (r_svc, 0.8 * r_svc), 0.4, tissue["svc_blood"])
    lung_like = np.isclose(img, tissue["lung"], atol=0.02)
    img *= 1.0 + 0.10 * tex[0]
    return np.where(lung_like, img + 0.05 * np.clip(tex[2], 0, None), img)  # vessels in the lungs


def simulate_aorta(
    row: pd.Series,
    seed: int,
    index: int,
    n_frames: int = N_FRAMES,
    rr_ms: float | None = None,
    pixel_mm: float | None = None,
) -> AortaSubject:
    """Render subject ``index``'s aortic cine from its population row, deterministically.

    ``row`` needs eid, age, heart_rate (for ``rr_ms`` when not given), central_pp and the true
    aortic columns of :func:`cardiopheno.synth.population.aorta_truth` (``AAo_min_area``,
    ``AAo_distensibility``, ``DAo_...``). ``pixel_mm`` overrides the drawn pixel size (1.6-1.8
    mm), for studies of how resolution limits the measurement.
    """
    rng = np.random.default_rng([seed, index, 0xA0A7A])
    if rr_ms is None:
        rr_ms = 60000.0 / float(row["heart_rate"])
    pp = float(row["central_pp"])
    if not np.isfinite(pp) or pp <= 0:
        raise ValueError(f"{row['eid']}: central_pp must be positive to drive the aorta, got {pp}")
    dt = float(np.float32(rr_ms / n_frames))  # as stored in pixdim[4]
    waves = _waves(row, rng, rr_ms)
    lumens = _draw_lumens(row, rng, pp, waves, np.arange(n_frames) * dt)
    lay = _layout(row, rng, lumens.r_max)
    grid = _draw_grid(rng, pixel_mm)
    tissue = _draw_tissue_contrast(rng)
    tex = smooth_field(rng, (3, grid.nx, grid.ny), 3.0)
    tex_fine = smooth_field(rng, (grid.nx, grid.ny), 1.0)
    # point spread: the static background is blurred once, each vessel's patch per frame below
    bg = _background(grid.sx, grid.sy, grid.px, tissue, tex, lay)
    bg = ndimage.gaussian_filter(bg, 0.5, mode="nearest")
    image = np.repeat(bg[..., None], n_frames, axis=2)
    labels = np.zeros((grid.nx, grid.ny, n_frames), np.uint8)
    coverage = np.zeros((grid.nx, grid.ny, 1, n_frames, len(VESSELS)), np.float16)
    flow_gain = float(rng.uniform(-0.08, 0.08))  # systolic inflow brightening or dephasing
    fractional = {
        vessel: _paint_vessel(
            vessel, lumens, lay, grid, tissue, tex_fine, flow_gain, rng, image, labels, coverage
        )
        for vessel in VESSELS
    }
    # Acquisition: coil bias, intensity scale, Rician noise.
    bias = coil_bias(rng, (grid.ii - grid.nx / 2) / grid.nx, (grid.jj - grid.ny / 2) / grid.ny)
    image, scale, sigma = scale_and_noise(image, bias, rng)
    image, labels = image[:, :, None, :], labels[:, :, None, :]

    affine = _affine(rng, grid.px, grid.phi, grid.cx, grid.cy)
    zooms = (grid.px, grid.px, SLICE_THICKNESS_MM, dt)
    truth, curves = _truth(row, labels, grid.px, dt, lumens, fractional, pp)
    truth.update(
        n_frames=n_frames,
        matrix_x=grid.nx,
        matrix_y=grid.ny,
        pixel_mm=grid.px,
        frame_interval_ms=dt,
        rr_ms=float(rr_ms),
        intensity_scale=scale,
        noise_sigma=sigma,
        AAo_DAo_transit_ms=waves["DAo"].onset_ms - waves["AAo"].onset_ms,
    )
    return AortaSubject(image, labels, affine, zooms, truth, curves, coverage)


@dataclass(frozen=True)
class _Lumens:
    """Each vessel's lumen over the cycle: the population's minimum area and distensibility,
    the pressure shape ``w`` per frame, the area per frame, the ellipse's a/b (``ecc``), the
    wall thickness and the largest outer radius (mm), all by vessel name."""

    a_min: dict[str, float]
    dist: dict[str, float]
    w: dict[str, np.ndarray]
    area: dict[str, np.ndarray]
    ecc: dict[str, float]
    wall: dict[str, float]
    r_max: dict[str, float]


def _draw_lumens(row: pd.Series, rng, pp: float, waves, t_ms: np.ndarray) -> _Lumens:
    """Areas from the pressure wave (``A_min (1 + D PP w / 1000)``); shape and wall drawn."""
    a_min = {v: float(row[f"{v}_min_area"]) for v in VESSELS}
    dist = {v: float(row[f"{v}_distensibility"]) for v in VESSELS}
    w = {v: waves[v](t_ms) for v in VESSELS}
    area = {v: a_min[v] * (1.0 + dist[v] * pp * w[v] / 1000.0) for v in VESSELS}
    ecc = {v: float(rng.uniform(1.0, 1.12)) for v in VESSELS}  # a/b of the elliptic lumen
    wall = {v: float(rng.uniform(1.5, 2.2)) for v in VESSELS}
    r_max = {v: np.sqrt(area[v].max() / np.pi) * np.sqrt(ecc[v]) + wall[v] for v in VESSELS}
    return _Lumens(a_min, dist, w, area, ecc, wall, r_max)


@dataclass(frozen=True)
class _Grid:
    """The slice's pixel grid: indices (``ii``, ``jj``) and scene mm coordinates (``sx``, ``sy``)
    of every pixel centre, the scene's centre (``cx``, ``cy``, pixels) and rotation ``phi``."""

    nx: int
    ny: int
    px: float
    cx: float
    cy: float
    phi: float
    ii: np.ndarray
    jj: np.ndarray
    sx: np.ndarray
    sy: np.ndarray


def _draw_grid(rng: np.random.Generator, pixel_mm: float | None) -> _Grid:
    """Matrix, pixel size (drawn unless ``pixel_mm``), centring and a small in-plane rotation."""
    nx, ny = 2 * int(rng.integers(100, 121)), 2 * int(rng.integers(88, 105))
    px = float(np.float32(pixel_mm if pixel_mm else rng.uniform(1.6, 1.8)))
    cx = (nx - 1) / 2.0 + rng.uniform(-10.0, 10.0) / px
    cy = (ny - 1) / 2.0 + rng.uniform(-10.0, 10.0) / px
    phi = np.deg2rad(rng.uniform(-8.0, 8.0))  # small in-plane rotation of the scene
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    px_x, px_y = (ii - cx) * px, (jj - cy) * px
    sx = (np.cos(phi) * px_x + np.sin(phi) * px_y).astype(np.float32)
    sy = (-np.sin(phi) * px_x + np.cos(phi) * px_y).astype(np.float32)
    return _Grid(nx, ny, px, cx, cy, phi, ii, jj, sx, sy)


def _draw_tissue_contrast(rng: np.random.Generator) -> dict[str, float]:
    """Tissue signal (bSSFP-like, aortic blood = 1) varying per subject."""
    jitter = lambda m, s: float(m * np.exp(rng.normal(0.0, s)))  # noqa: E731
    return {
        "blood": 1.0,
        "pa_blood": jitter(0.95, 0.04),
        "svc_blood": jitter(0.85, 0.06),
        "wall": jitter(0.30, 0.12),
        "fat": jitter(0.85, 0.08),
        "muscle": jitter(0.25, 0.1),
        "soft": jitter(0.33, 0.1),
        "lung": jitter(0.04, 0.2),
        "air": jitter(0.02, 0.2),
        "bone": jitter(0.22, 0.1),
        "marrow": jitter(0.55, 0.1),
        "csf": jitter(0.85, 0.08),
    }


def _paint_vessel(
    vessel: str,
    lumens: _Lumens,
    lay: dict,
    grid: _Grid,
    tissue: dict[str, float],
    tex_fine: np.ndarray,
    flow_gain: float,
    rng: np.random.Generator,
    image: np.ndarray,
    labels: np.ndarray,
    coverage: np.ndarray,
) -> np.ndarray:
    """Paint one compliant vessel (lumen and wall, moving with the pressure wave) into
    ``image``, ``labels`` and ``coverage`` in place; returns its partial-volume area per frame."""
    label = VESSELS[vessel]
    sx, sy, px = grid.sx, grid.sy, grid.px
    w, ecc, wall = lumens.w[vessel], lumens.ecc[vessel], lumens.wall[vessel]
    amp, heading = lay["motion"][vessel]
    shift = amp * w[:, None, None] * _unit(heading)[:, None, None, None]
    centre = lay[vessel][:, None, None, None] + shift  # (2, T, 1, 1)
    b_axis = np.sqrt(lumens.area[vessel] / (np.pi * ecc))[:, None, None]
    axes = (b_axis * ecc, b_axis)
    angle = float(rng.uniform(0.0, np.pi))
    # the pixels within reach of the vessel in any frame, as a box
    reach = lumens.r_max[vessel] + amp + 3.0 * px
    near = np.nonzero(np.hypot(sx - lay[vessel][0], sy - lay[vessel][1]) <= reach)
    sl = tuple(slice(int(k.min()), int(k.max()) + 1) for k in near)
    bx, by = sx[sl][None], sy[sl][None]
    c_lum = ellipse_cov_scene(bx, by, centre, axes, angle, px)
    outer = (axes[0] + wall, axes[1] + wall)
    c_out = np.maximum(ellipse_cov_scene(bx, by, centre, outer, angle, px), c_lum)
    blood = (
        tissue["blood"] * (1.0 + 0.04 * tex_fine[sl])[None] * (1.0 + flow_gain * w[:, None, None])
    )
    patch = np.moveaxis(image[sl], -1, 0)
    patch = patch * (1.0 - c_out) + tissue["wall"] * (c_out - c_lum) + blood * c_lum
    patch = ndimage.gaussian_filter(patch, sigma=(0.0, 0.5, 0.5), mode="nearest")
    image[sl] = np.moveaxis(patch, 0, -1)
    lab = np.moveaxis(labels[sl], -1, 0)
    lab[c_lum >= 0.5] = label
    labels[sl] = np.moveaxis(lab, 0, -1)
    coverage[sl + (0, slice(None), label - 1)] = np.moveaxis(c_lum, 0, -1)
    return c_lum.sum(axis=(1, 2)) * px * px


def _affine(rng: np.random.Generator, px: float, phi: float, cx: float, cy: float) -> np.ndarray:
    """Transverse slice in RAS+: scene +x (patient left) is world -x, scene +y (posterior) -y."""
    e_i = px * np.array([-np.cos(phi), np.sin(phi), 0.0])
    e_j = px * np.array([-np.sin(phi), -np.cos(phi), 0.0])
    e_k = np.array([0.0, 0.0, SLICE_THICKNESS_MM])
    centre = np.array([0.0, 10.0, 60.0]) + rng.normal(0.0, 10.0, 3)
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = e_i, e_j, e_k
    affine[:3, 3] = centre - cx * e_i - cy * e_j
    return affine


def distensibility(a_max: float, a_min: float, central_pp: float) -> float:
    """(A_max - A_min) / (A_min x PP) x 1000, in 10^-3 mmHg^-1 (the anchor's definition)."""
    return (a_max - a_min) / (a_min * central_pp) * 1000.0


def _truth(row, labels, px, dt, lumens: _Lumens, fractional, pp):
    """Analytic and voxelised areas and distensibilities, and per-frame area curves."""
    a_min, dist, area, w = lumens.a_min, lumens.dist, lumens.area, lumens.w
    n = labels.shape[3]
    eid = str(row["eid"])
    t: dict = {"eid": eid, "central_pp": pp}
    curves = pd.DataFrame({"eid": eid, "frame": np.arange(n), "time_ms": np.arange(n) * dt})
    for vessel, label in VESSELS.items():
        vox = np.count_nonzero(labels == label, axis=(0, 1, 2)) * px * px
        t[f"{vessel}_max_area"] = float(vox.max())
        t[f"{vessel}_min_area"] = float(vox.min())
        t[f"{vessel}_distensibility"] = float(distensibility(vox.max(), vox.min(), pp))
        # analytic: the continuous cycle's extremes (w spans [0, 1] exactly)
        t[f"{vessel}_max_area_analytic"] = a_min[vessel] * (1.0 + dist[vessel] * pp / 1000.0)
        t[f"{vessel}_min_area_analytic"] = a_min[vessel]
        t[f"{vessel}_distensibility_analytic"] = dist[vessel]
        curves[f"{vessel}_area_mm2"] = vox
        curves[f"{vessel}_area_mm2_analytic"] = area[vessel]
        curves[f"{vessel}_area_mm2_fractional"] = fractional[vessel]
        curves[f"{vessel}_pressure_shape"] = w[vessel]
    return t, curves


def truth_columns() -> dict[str, ColumnSpec]:
    """Units and descriptions of :attr:`AortaSubject.truth`'s float entries, for write_table."""
    cols = {"central_pp": ColumnSpec("mmHg", "central pulse pressure driving the vessels")}
    for vessel in VESSELS:
        for kind, unit, what in (
            ("max_area", "mm2", "maximum lumen area"),
            ("min_area", "mm2", "minimum lumen area"),
            ("distensibility", "10-3/mmHg", "distensibility (A_max - A_min) / (A_min PP) x 1000"),
        ):
            cols[f"{vessel}_{kind}"] = ColumnSpec(unit, f"{vessel} {what}: from the truth labels")
            cols[f"{vessel}_{kind}_analytic"] = ColumnSpec(
                unit, f"{vessel} {what}: analytic, over the continuous cycle"
            )
    cols.update(
        pixel_mm=ColumnSpec("mm", "in-plane pixel size"),
        frame_interval_ms=ColumnSpec("ms", "frame interval (pixdim[4])"),
        rr_ms=ColumnSpec("ms", "RR interval of the cine"),
        intensity_scale=ColumnSpec("", "blood signal before bias and noise"),
        noise_sigma=ColumnSpec("", "Rician noise sigma"),
        AAo_DAo_transit_ms=ColumnSpec("ms", "pulse transit time from AAo to DAo"),
    )
    return cols


def curve_columns() -> dict[str, ColumnSpec]:
    """Units and descriptions of :attr:`AortaSubject.curves`' float columns, for write_table."""
    cols = {"time_ms": ColumnSpec("ms", "frame time from the R wave")}
    for vessel in VESSELS:
        cols.update(
            {
                f"{vessel}_area_mm2": ColumnSpec("mm2", f"{vessel} lumen area from the labels"),
                f"{vessel}_area_mm2_analytic": ColumnSpec("mm2", f"{vessel} analytic lumen area"),
                f"{vessel}_area_mm2_fractional": ColumnSpec(
                    "mm2", f"{vessel} partial-volume area (sum of lumen coverage x pixel area)"
                ),
                f"{vessel}_pressure_shape": ColumnSpec(
                    "", f"normalised pressure wave w(t) in [0, 1] at the {vessel}"
                ),
            }
        )
    return cols
