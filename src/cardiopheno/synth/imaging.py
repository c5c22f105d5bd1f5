"""Render one synthetic subject: a 4D short-axis bSSFP-like cine, its label map and its truth.

Partial volume: each voxel's tissue fractions are the mean over 3 positions through the 8 mm slab
of an anti-aliased in-plane coverage (signed distance to the boundary / pixel size, clipped), so
edges are fractional in-plane and through-plane. Labels are the majority class of the same
fractions. The image is then blurred slightly (point-spread), multiplied by a smooth coil bias
field and a per-subject intensity scale, and given Rician noise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cardiopheno.definitions import MYOCARDIAL_DENSITY_G_PER_ML
from cardiopheno.synth.acquisition import acquire
from cardiopheno.synth.anatomy import (
    SLICE_SPACING_MM,
    CycleShape,
    Heart,
    build_heart,
    cycle_shape,
    wall_thickness,
)
from cardiopheno.synth.atria import Atrium, atrial_truth_tables, atrial_volumes, build_atria
from cardiopheno.synth.longaxis import AORTIC_ROOT_MM, LONG_AXIS_VIEWS, render_long_axis
from cardiopheno.synth.motion import plan_motion, strain_truth, strain_truth_columns
from cardiopheno.synth.shortaxis import (
    ATRIAL_WALL_MM,
    RV_WALL_MM,
    InPlaneGrid,
    StackScene,
    draw_fat_and_papillary,
    draw_grid,
    draw_textures,
    draw_thorax,
    render_stack,
)

log = logging.getLogger(__name__)

MIN_SLICES, MAX_SLICES = 9, 13
MIN_FRAMES, MAX_FRAMES = 25, 50
SHIFTED_FRACTION = 0.2  # subjects whose cine does not start at ED
__all__ = [  # the wall thicknesses live with the slice renderer (synth.shortaxis)
    "ATRIAL_WALL_MM", "MAX_FRAMES", "MAX_SLICES", "MIN_FRAMES", "MIN_SLICES", "RV_WALL_MM",
    "SHIFTED_FRACTION", "Subject", "simulate_subject",
]  # fmt: skip


@dataclass
class Subject:
    """A rendered subject: image (int16 X x Y x Z x T), labels (uint8, same grid) and truth."""

    image: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    zooms: tuple[float, float, float, float]
    truth: dict
    curves: pd.DataFrame
    slice_z: np.ndarray = field(repr=False)
    views: dict = field(default_factory=dict, repr=False)  # long-axis ViewImage by view name
    atrial_curves: pd.DataFrame | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _Cycle:
    """The cine's timing: frames over one RR interval and the cycle's shape (ES at ``es0``)."""

    n_frames: int
    rr_ms: float
    dt: float  # frame interval, as stored in pixdim[4]
    shape: CycleShape
    es0: int


def simulate_subject(
    row: pd.Series,
    seed: int,
    index: int,
    views: tuple[str, ...] = LONG_AXIS_VIEWS,
    hypokinesis: bool | None = None,
) -> Subject:
    """Render subject ``index`` of the cohort from its population row, deterministically: the
    short-axis stack and the long-axis ``views`` of the same heart.

    ``hypokinesis``: force a hypokinetic region on (True) or off (False); None lets the
    subject's own draw decide (``synth.motion``).
    """
    rng = np.random.default_rng([seed, index, 0x1A6E])
    # the atria and long-axis views draw from their own stream, so the short axis's draws
    # (and images below the valve plane) do not depend on which views are rendered
    rng_la = np.random.default_rng([seed, index, 0x1A4C])
    cycle = _draw_cycle(row, rng)
    heart = _draw_heart(row, cycle, rng)
    atria = build_atria(heart, cycle.shape, atrial_volumes(row, rng_la), rng_la)
    slice_z = _plan_slices(heart, rng)
    grid = draw_grid(rng)
    # Wall motion (hypokinesis, myocardial texture) from its own stream: the draws above and
    # below, and so every normal subject's image, stay as they were.
    r_in_ed = heart.radii(slice_z[:, None])["r_in"][:, 0]
    motion_rng = np.random.default_rng([seed, index, 0x5714])
    motion = plan_motion(slice_z, r_in_ed, grid.px, str(row["pathology"]), motion_rng, hypokinesis)
    tissue = _draw_tissue_contrast(rng)
    thorax = draw_thorax(rng)
    tex, tex_fine = draw_textures(rng, grid.n_xy)
    root = _aortic_root(atria[0])
    fat_theta, pap_theta = draw_fat_and_papillary(rng)
    scene = StackScene(
        heart, atria, root, motion, grid, tissue, thorax, tex, tex_fine, fat_theta, pap_theta
    )
    image, labels = render_stack(scene, slice_z, cycle.n_frames)
    image, scale, sigma = acquire(image, rng, with_params=True)
    ecc, err, ecc_normal, strain_slices = strain_truth(heart, slice_z, motion, labels[..., 0])

    # Frame order: ~20 % of cines start elsewhere in the cycle (ED is not frame 0).
    shift = _draw_frame_shift(rng, cycle.n_frames)
    image = np.roll(image, shift, axis=3)
    labels = np.roll(labels, shift, axis=3)
    ed_frame, es_frame = shift, (cycle.es0 + shift) % cycle.n_frames

    affine = _affine(rng, grid.px, grid.phi, grid.cx, grid.cy, slice_z[0])
    zooms = (grid.px, grid.px, SLICE_SPACING_MM, cycle.dt)
    truth, curves = _truth(
        row, heart, labels, grid.px, cycle.dt, ed_frame, es_frame, cycle.shape, cycle.rr_ms, slice_z
    )
    heart_to_world = affine @ np.linalg.inv(_pixel_to_heart(grid, slice_z[0]))
    la_views = {
        view: render_long_axis(
            view, heart, atria, root, heart_to_world, tissue, cycle.n_frames, cycle.dt, rng_la
        )
        for view in views
    }
    atrial_t, atrial_curves = atrial_truth_tables(row, atria, la_views, cycle.dt)
    truth.update(atrial_t)
    truth.update(strain_truth_columns(ecc, err, ecc_normal, motion, strain_slices))
    order = (np.arange(cycle.n_frames) - ed_frame) % cycle.n_frames  # image -> cycle frame
    curves["Ecc_global"] = ecc[16][order]
    curves["Err_global"] = err[16][order]
    truth.update(
        n_frames=cycle.n_frames,
        n_slices=len(slice_z),
        matrix=grid.n_xy,
        pixel_mm=grid.px,
        frame_interval_ms=cycle.dt,
        intensity_scale=scale,
        noise_sigma=sigma,
    )
    return Subject(image, labels, affine, zooms, truth, curves, slice_z, la_views, atrial_curves)


def _draw_cycle(row: pd.Series, rng: np.random.Generator) -> _Cycle:
    """Frame count and timing from the subject's heart rate."""
    n_frames = int(rng.integers(MIN_FRAMES, MAX_FRAMES + 1))
    rr_ms = 60000.0 / float(row["heart_rate"])
    dt = float(np.float32(rr_ms / n_frames))  # as stored in pixdim[4]
    shape, es0 = cycle_shape(float(row["heart_rate"]), n_frames)
    return _Cycle(n_frames, rr_ms, dt, shape, es0)


def _draw_heart(row: pd.Series, cycle: _Cycle, rng: np.random.Generator) -> Heart:
    """The ventricles following the row's volumes over the cycle (rounder when dilated)."""
    filled = cycle.shape.filled(np.arange(cycle.n_frames) / cycle.n_frames)
    lv_curve = row["LVESV"] + row["LVSV"] * filled
    rv_curve = row["RVESV"] + row["RVSV"] * filled
    sphericity = float(rng.uniform(1.8, 2.1)) if row["pathology"] == "dilated" else None
    return build_heart(lv_curve, float(row["LVM"]), rv_curve, rng, sphericity)


def _plan_slices(heart: Heart, rng: np.random.Generator) -> np.ndarray:
    """Slice centres (mm, base plane at 0): 1-2 above the ED base plane, then enough 10 mm slabs
    to pass the epicardial apex, within MIN_SLICES..MAX_SLICES."""
    depth = (1.0 + heart.tau) * heart.c[0] + 0.6 * heart.t[0]
    n_above = int(rng.choice([1, 1, 2]))
    n_lv = int(np.ceil(depth / SLICE_SPACING_MM))
    n_slices = n_above + n_lv + int(rng.integers(0, 2))
    if n_slices > MAX_SLICES:
        n_above = max(1, n_above - (n_slices - MAX_SLICES))
        n_slices = min(n_above + n_lv, MAX_SLICES)
    n_slices = max(n_slices, MIN_SLICES)
    return SLICE_SPACING_MM * (n_above - np.arange(n_slices)) - SLICE_SPACING_MM / 2.0


def _draw_tissue_contrast(rng: np.random.Generator) -> dict[str, float]:
    """Tissue signal (bSSFP-like, blood = 1) varying per subject; the long axis shares it."""
    jitter = lambda m, s: float(m * np.exp(rng.normal(0.0, s)))  # noqa: E731
    return {
        "blood": 1.0,
        "myo": jitter(0.27, 0.12),
        "fat": jitter(0.85, 0.08),
        "muscle": jitter(0.25, 0.1),
        "soft": jitter(0.33, 0.1),
        "lung": jitter(0.04, 0.2),
        "liver": jitter(0.36, 0.1),
        "stomach": jitter(0.55, 0.15),
        "bone": jitter(0.22, 0.1),
        "marrow": jitter(0.55, 0.1),
    }


def _aortic_root(la: Atrium) -> tuple[float, float, float]:
    """Aortic root (u, v, radius): anterior and towards the RV, clear of both atria and both
    long-axis planes."""
    root_d = la.radius.max() + AORTIC_ROOT_MM + 3.0
    return (la.u - 0.7 * root_d, la.v - 0.7 * root_d, AORTIC_ROOT_MM)


def _draw_frame_shift(rng: np.random.Generator, n_frames: int) -> int:
    """Frames the cine is rolled by: ~20 % of cines start elsewhere in the cycle."""
    return int(rng.integers(1, n_frames)) if rng.random() < SHIFTED_FRACTION else 0


def _pixel_to_heart(grid: InPlaneGrid, z0: float) -> np.ndarray:
    """Short-axis voxel (i, j, k) -> heart frame (u, v, z): linear, so the long-axis views
    share the stack's world coordinates through it."""
    px, phi = grid.px, grid.phi
    rvx, rvy = grid.rv_direction()
    to_heart = np.eye(4)
    rot = np.array([[np.cos(phi), np.sin(phi)], [-np.sin(phi), np.cos(phi)]])  # px -> scene
    to_uv = np.array([[-rvx, -rvy], [-rvy, rvx]]) @ rot * px
    to_heart[:2, :2] = to_uv
    to_heart[:2, 3] = -to_uv @ np.array([grid.cx, grid.cy])
    to_heart[2, 2], to_heart[2, 3] = -SLICE_SPACING_MM, z0
    return to_heart


def _affine(rng, px, phi, cx, cy, z0) -> np.ndarray:
    """Oblique short-axis orientation in RAS+: slices from base to apex along the LV long axis."""
    n = np.array([0.55, -0.45, 0.70]) + rng.normal(0.0, 0.08, 3)  # apex -> base
    n /= np.linalg.norm(n)
    left = np.array([-1.0, 0.0, 0.0])
    el = left - left.dot(n) * n
    el /= np.linalg.norm(el)
    ep = np.cross(n, el)
    if ep[1] > 0:  # make the scene's +y posterior (RAS: -y)
        ep = -ep
    rot = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]]).T
    basis = np.stack([el, ep], axis=1) @ rot  # columns: world direction of pixel axes i, j
    e_i, e_j = basis[:, 0] * px, basis[:, 1] * px
    e_k = -n * SLICE_SPACING_MM
    centre = np.array([10.0, 20.0, 30.0]) + rng.normal(0.0, 10.0, 3)
    origin = centre + z0 * n - cx * e_i - cy * e_j
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2], affine[:3, 3] = e_i, e_j, e_k, origin
    return affine


def _truth(row, heart: Heart, labels, px, dt, ed, es, shape, rr_ms, slice_z):
    """Analytic and voxelised IDPs and per-frame volume curves (image frame order)."""
    n = labels.shape[3]
    vox_ml = px * px * SLICE_SPACING_MM / 1000.0
    counts = np.stack([(labels == lab).sum(axis=(0, 1, 2)) for lab in (1, 2, 3)]) * vox_ml
    order = (np.arange(n) - ed) % n  # image frame f shows cycle frame order[f]
    lv_an = heart.lv_volume[order]
    rv_an = heart.rv_volume[order]
    lv_vox, myo_vox, rv_vox = counts
    bsa = float(row["bsa_m2"])
    hr = float(row["heart_rate"])
    t = {"eid": str(row["eid"]), "pathology": row["pathology"], "ED_frame": ed, "ES_frame": es}

    def put(name, vox, analytic):
        t[name], t[f"{name}_analytic"] = float(vox), float(analytic)

    put("LVEDV", lv_vox[ed], lv_an[ed])
    put("LVESV", lv_vox[es], lv_an[es])
    put("LVSV", lv_vox[ed] - lv_vox[es], lv_an[ed] - lv_an[es])
    put("LVEF", 100 * (1 - lv_vox[es] / lv_vox[ed]), 100 * (1 - lv_an[es] / lv_an[ed]))
    put("LVCO", t["LVSV"] * hr / 1000, t["LVSV_analytic"] * hr / 1000)
    put(
        "LVM",
        MYOCARDIAL_DENSITY_G_PER_ML * myo_vox[ed],
        MYOCARDIAL_DENSITY_G_PER_ML * heart.myo_volume,
    )
    put("RVEDV", rv_vox[ed], rv_an[ed])
    put("RVESV", rv_vox[es], rv_an[es])
    put("RVSV", rv_vox[ed] - rv_vox[es], rv_an[ed] - rv_an[es])
    put("RVEF", 100 * (1 - rv_vox[es] / rv_vox[ed]), 100 * (1 - rv_an[es] / rv_an[ed]))
    for name in ("LVEDV", "LVESV", "LVSV", "LVM", "RVEDV", "RVESV", "RVSV"):
        put(f"{name}i", t[name] / bsa, t[f"{name}_analytic"] / bsa)
    t["HR"] = hr
    # Peak rates: analytic from the continuous curve; voxelised by central differences of the
    # cyclic voxel volume curve.
    per, pfr_e, pfr_a = shape.rates(float(heart.lv_volume.max() - heart.lv_volume.min()), rr_ms)
    dv = (np.roll(lv_vox, -1) - np.roll(lv_vox, 1)) / (2 * dt / 1000.0)
    cyc = np.roll(dv, -ed)  # cycle order, ED first
    es0 = (es - ed) % n
    phase = np.arange(n) / n
    split = (
        shape.t_es
        + shape.ivr
        + shape.d_e
        + 0.5 * (1 - shape.d_a - shape.t_es - shape.ivr - shape.d_e)
    )
    put("LV_PER", -cyc[: es0 + 1].min(), per)
    put("LV_PFR_E", cyc[(phase > shape.t_es) & (phase < split)].max(), pfr_e)
    put("LV_PFR_A", cyc[phase >= split].max(), pfr_a)
    wt = wall_thickness(heart, slice_z, frame=0)
    t["WT_global"] = float(wt.mean()) if wt.size else float("nan")
    t["WT_max"] = float(wt.max()) if wt.size else float("nan")
    curves = pd.DataFrame(
        {
            "eid": str(row["eid"]),
            "frame": np.arange(n),
            "time_ms": np.arange(n) * dt,
            "LV_cavity_ml": lv_vox,
            "LV_cavity_ml_analytic": lv_an,
            "LV_myocardium_ml": myo_vox,
            "LV_myocardium_ml_analytic": np.full(n, heart.myo_volume),
            "RV_cavity_ml": rv_vox,
            "RV_cavity_ml_analytic": rv_an,
        }
    )
    return t, curves
