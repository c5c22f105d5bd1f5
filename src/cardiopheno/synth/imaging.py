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
from functools import reduce

import numpy as np
import pandas as pd
from scipy import ndimage

from cardiopheno.definitions import MYOCARDIAL_DENSITY_G_PER_ML
from cardiopheno.synth.acquisition import (
    acquire,
    cov_disc,
    cov_distance,
    ellipse_cov_scene,
    ellipse_distance,
    smooth_field,
)
from cardiopheno.synth.anatomy import (
    SLICE_SPACING_MM,
    SLICE_THICKNESS_MM,
    Heart,
    build_heart,
    cycle_shape,
    wall_thickness,
)
from cardiopheno.synth.atria import atrial_truth_tables, atrial_volumes, build_atria
from cardiopheno.synth.longaxis import AORTIC_ROOT_MM, LONG_AXIS_VIEWS, render_long_axis
from cardiopheno.synth.motion import (
    TEXTURE_AMPLITUDE,
    moving_radii,
    plan_motion,
    strain_truth,
    strain_truth_columns,
    texture_at,
)

log = logging.getLogger(__name__)

MIN_SLICES, MAX_SLICES = 9, 13
MIN_FRAMES, MAX_FRAMES = 25, 50
SHIFTED_FRACTION = 0.2  # subjects whose cine does not start at ED
_SUBSAMPLES = np.array([-1.0, 0.0, 1.0]) * SLICE_THICKNESS_MM / 3.0  # through the slab
RV_WALL_MM = 3.0
ATRIAL_WALL_MM = 2.5


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


def _background(sx, sy, depth: float, px: float, tissue: dict, tex: np.ndarray, p: dict):
    """Static thorax around the heart for one slice (scene mm coordinates, LV at the origin;
    +x patient left, +y posterior). depth: 0 at the base plane, 1 at the apex."""
    img = np.zeros(sx.shape, np.float32)

    def paint(cov, value):
        nonlocal img
        img = img * (1.0 - cov) + value * cov

    bc, ba, ang = p["body_centre"], p["body_axes"], p["body_angle"]
    paint(ellipse_cov_scene(sx, sy, bc, ba, ang, px), tissue["fat"])
    fat_w = p["fat_mm"]
    paint(ellipse_cov_scene(sx, sy, bc, (ba[0] - fat_w, ba[1] - fat_w), ang, px), tissue["muscle"])
    inner = (ba[0] - fat_w - 12.0, ba[1] - fat_w - 12.0)
    paint(ellipse_cov_scene(sx, sy, bc, inner, ang, px), tissue["soft"])
    shrink = 1.0 - 0.35 * depth  # lungs smaller towards the diaphragm
    for centre, axes in p["lungs"]:
        paint(
            ellipse_cov_scene(sx, sy, centre, (axes[0] * shrink, axes[1] * shrink), 0.3, px),
            tissue["lung"],
        )
    grow = np.clip(0.25 + 0.9 * depth, 0.0, 1.1)  # liver and stomach appear towards the apex
    lc, la = p["liver_centre"], p["liver_axes"]
    paint(ellipse_cov_scene(sx, sy, lc, (la[0] * grow, la[1] * grow), 0.4, px), tissue["liver"])
    sc, sa = p["stomach_centre"], p["stomach_axes"]
    paint(ellipse_cov_scene(sx, sy, sc, (sa[0] * grow, sa[1] * grow), -0.3, px), tissue["stomach"])
    paint(ellipse_cov_scene(sx, sy, p["spine"], (17.0, 17.0), 0.0, px), tissue["bone"])
    paint(ellipse_cov_scene(sx, sy, p["spine"], (11.0, 11.0), 0.0, px), tissue["marrow"])
    paint(ellipse_cov_scene(sx, sy, p["aorta"], (11.0, 11.0), 0.0, px), tissue["blood"] * 0.85)
    patchy = np.clip(1.5 * (tex[1] - 0.5), 0.0, 1.0)  # sparse epicardial/mediastinal fat
    paint(
        ellipse_cov_scene(sx, sy, p["peri_centre"], p["peri_axes"], 0.2, px) * patchy,
        tissue["fat"],
    )
    lung_like = np.isclose(img, tissue["lung"], atol=0.02)
    img *= 1.0 + 0.10 * tex[0]
    img = np.where(lung_like, img + 0.05 * np.clip(tex[2], 0, None), img)  # vessels in the lungs
    return img


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
    n_frames = int(rng.integers(MIN_FRAMES, MAX_FRAMES + 1))
    hr = float(row["heart_rate"])
    rr_ms = 60000.0 / hr
    dt = float(np.float32(rr_ms / n_frames))  # as stored in pixdim[4]
    shape, es0 = cycle_shape(hr, n_frames)
    filled = shape.filled(np.arange(n_frames) / n_frames)
    lv_curve = row["LVESV"] + row["LVSV"] * filled
    rv_curve = row["RVESV"] + row["RVSV"] * filled
    sphericity = float(rng.uniform(1.8, 2.1)) if row["pathology"] == "dilated" else None
    heart = build_heart(lv_curve, float(row["LVM"]), rv_curve, rng, sphericity)
    atrial_truth = atrial_volumes(row, rng_la)
    atria = build_atria(heart, shape, atrial_truth, rng_la)

    # Slices: 1-2 above the ED base plane, then enough 10 mm slabs to pass the epicardial apex.
    depth = (1.0 + heart.tau) * heart.c[0] + 0.6 * heart.t[0]
    n_above = int(rng.choice([1, 1, 2]))
    n_lv = int(np.ceil(depth / SLICE_SPACING_MM))
    n_slices = n_above + n_lv + int(rng.integers(0, 2))
    if n_slices > MAX_SLICES:
        n_above = max(1, n_above - (n_slices - MAX_SLICES))
        n_slices = min(n_above + n_lv, MAX_SLICES)
    n_slices = max(n_slices, MIN_SLICES)
    slice_z = SLICE_SPACING_MM * (n_above - np.arange(n_slices)) - SLICE_SPACING_MM / 2.0

    # In-plane grid and pose.
    n_xy = int(rng.integers(64, 81)) * 2
    px = float(np.float32(rng.uniform(1.7, 1.9)))  # as stored in the header (float32)
    # Wall motion (hypokinesis, myocardial texture) from its own stream: the draws above and
    # below, and so every normal subject's image, stay as they were.
    motion = plan_motion(
        slice_z,
        heart.radii(slice_z[:, None])["r_in"][:, 0],
        px,
        str(row["pathology"]),
        np.random.default_rng([seed, index, 0x5714]),
        hypokinesis,
    )
    cx = (n_xy - 1) / 2.0 + rng.uniform(-12.0, 12.0) / px
    cy = (n_xy - 1) / 2.0 + rng.uniform(-12.0, 12.0) / px
    phi = np.deg2rad(rng.uniform(-25.0, 25.0))  # scene rotation relative to the pixel axes
    rv_angle = np.arctan2(0.3, -0.95) + np.deg2rad(rng.uniform(-15.0, 15.0))
    ii, jj = np.meshgrid(np.arange(n_xy), np.arange(n_xy), indexing="ij")
    px_x, px_y = (ii - cx) * px, (jj - cy) * px
    sx = (np.cos(phi) * px_x + np.sin(phi) * px_y).astype(np.float32)
    sy = (-np.sin(phi) * px_x + np.cos(phi) * px_y).astype(np.float32)
    rvx, rvy = np.cos(rv_angle), np.sin(rv_angle)
    hu = (-(sx * rvx + sy * rvy)).astype(np.float32)  # heart frame: RV towards -u
    hv = (-sx * rvy + sy * rvx).astype(np.float32)

    # Tissue contrast (bSSFP-like, blood = 1) varying per subject.
    jitter = lambda m, s: float(m * np.exp(rng.normal(0.0, s)))  # noqa: E731
    tissue = {
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
    scene = {
        "body_centre": (rng.uniform(-45, -25), rng.uniform(10, 30)),
        "body_axes": (rng.uniform(150, 175), rng.uniform(110, 130)),
        "body_angle": rng.uniform(-0.15, 0.15),
        "fat_mm": rng.uniform(10, 22),
        "lungs": [
            (
                (rng.uniform(70, 85), rng.uniform(-10, 10)),
                (rng.uniform(40, 50), rng.uniform(75, 90)),
            ),
            (
                (rng.uniform(-120, -105), rng.uniform(-15, 5)),
                (rng.uniform(45, 55), rng.uniform(75, 90)),
            ),
        ],
        "liver_centre": (rng.uniform(-85, -65), rng.uniform(55, 75)),
        "liver_axes": (rng.uniform(75, 95), rng.uniform(45, 60)),
        "stomach_centre": (rng.uniform(55, 75), rng.uniform(60, 80)),
        "stomach_axes": (rng.uniform(25, 40), rng.uniform(18, 28)),
        "spine": (rng.uniform(-35, -15), rng.uniform(100, 115)),
        "aorta": (rng.uniform(0, 20), rng.uniform(78, 90)),
        "peri_centre": (rng.uniform(-30, -15), rng.uniform(-10, 5)),
        "peri_axes": (rng.uniform(65, 80), rng.uniform(50, 60)),
    }
    tex = smooth_field(rng, (3, n_xy, n_xy), 3.0)
    tex_fine = smooth_field(rng, (n_xy, n_xy), 1.0)
    lv_length = (1.0 + heart.tau) * heart.c[0]

    n_t = n_frames
    image = np.empty((n_xy, n_xy, n_slices, n_t), np.float32)
    labels = np.zeros((n_xy, n_xy, n_slices, n_t), np.uint8)
    la, ra = atria
    # aortic root: anterior and towards the RV, clear of both atria and both long-axis planes
    root_d = la.radius.max() + AORTIC_ROOT_MM + 3.0
    root = (la.u - 0.7 * root_d, la.v - 0.7 * root_d, AORTIC_ROOT_MM)
    r_atria = [(la.u, la.v, la.radius.max()), (ra.u, ra.v, ra.radius.max()), root]
    fat_theta = rng.uniform(0, 2 * np.pi)
    pap_theta = np.deg2rad(rng.uniform(35, 55, size=2)) * np.array([1, -1])
    for k in range(n_slices):
        z_k = slice_z[k]
        depth_k = float(np.clip(-z_k / lv_length, 0.0, 1.0))
        tex_k = np.roll(tex, shift=(2 * k, -k), axis=(1, 2))
        bg = ndimage.gaussian_filter(_background(sx, sy, depth_k, px, tissue, tex_k, scene), 0.5)
        # Bounding box of the heart in this slice (all frames, all sub-samples).
        reach = 0.0
        for dz in _SUBSAMPLES:
            r = heart.radii(z_k + dz)
            reach = max(
                reach,
                float(np.max(r["r_out"] + 6.0)),
                float(np.max(r["rv_d"] + r["rv_x"] + RV_WALL_MM)),
                float(np.max(r["rv_y"] + RV_WALL_MM)),
            )
            if np.any(z_k + dz > heart.z_base):
                reach = max(reach, max(np.hypot(u, v) + rad for u, v, rad in r_atria) + 4.0)
        reach += 2.0 * px
        i0, i1 = (
            int(max(0, np.floor(cx - reach / px))),
            int(min(n_xy, np.ceil(cx + reach / px) + 1)),
        )
        j0, j1 = (
            int(max(0, np.floor(cy - reach / px))),
            int(min(n_xy, np.ceil(cy + reach / px) + 1)),
        )
        sl = (slice(i0, i1), slice(j0, j1))
        u, v = hu[sl][None], hv[sl][None]
        rho = np.hypot(u, v)
        ang = np.arctan2(v, u)
        fat_w = np.float32(1.0) + np.float32(3.5) * np.clip(np.cos(ang - fat_theta), 0.0, None) ** 2
        rho_atr = [np.hypot(u - a.u, v - a.v) for a in atria]
        rho_root = np.hypot(u - root[0], v - root[1])
        acc = {key: 0.0 for key in ("blood", "myo", "fat", "bg", "cav", "lvm", "rv")}
        for dz in _SUBSAMPLES:
            z = z_k + dz
            r = {key: val[:, None, None].astype(np.float32) for key, val in heart.radii(z).items()}
            if motion.factor[k].min() < 1.0:  # hypokinetic: the wall radii depend on angle
                r_in_k, r_out_k = moving_radii(
                    r["r_in"], r["r_out"], r["r_in"][:1], r["r_out"][:1], motion.k(k, ang)
                )
                c_cav = cov_disc(rho, r_in_k.astype(np.float32), px)
                c_out = cov_disc(rho, r_out_k.astype(np.float32), px)
            else:
                c_cav = cov_disc(rho, r["r_in"], px)
                c_out = cov_disc(rho, r["r_out"], px)
            if np.any(r["rv_x"] > 0):
                sd_rv = ellipse_distance(u + r["rv_d"], v, r["rv_x"], r["rv_y"])
                c_rv = cov_distance(sd_rv, px)
                c_rvw = cov_distance(sd_rv, px, RV_WALL_MM)
            else:
                c_rv = c_rvw = np.float32(0.0)
            mid = (z < heart.z_base[:, None, None] - 0.2 * lv_length) & (
                z > heart.z_apex + 0.3 * lv_length
            )
            c_pap = 0.0
            for th in pap_theta if mid.any() else ():  # papillary muscles: mid-ventricle only
                pr = 0.72 * r["r_in"]
                dx, dy = u - pr * np.cos(th), v - pr * np.sin(th)
                dist = np.sqrt(dx * dx + dy * dy)
                c_pap = np.maximum(c_pap, cov_disc(dist, 0.13 * r["r_in"] * mid, px))
            above = (z > heart.z_base)[:, None, None]
            if above.any():  # atria: sections of the truncated ellipsoids; the root a cylinder
                r_at = [a.section_radius(z, heart.z_base)[:, None, None] for a in atria]
                c_atr = reduce(
                    np.maximum,
                    [cov_disc(rho, r, px) for rho, r in zip(rho_atr, r_at, strict=True)]
                    + [cov_disc(rho_root, np.float32(root[2]), px)],
                )
                c_atrw = reduce(
                    np.maximum,
                    [
                        cov_disc(rho, (r + ATRIAL_WALL_MM) * (r > 0), px)
                        for rho, r in zip(rho_atr, r_at, strict=True)
                    ]
                    + [cov_disc(rho_root, np.float32(root[2] + ATRIAL_WALL_MM), px)],
                )
            else:
                c_atr = c_atrw = np.float32(0.0)
            pap = c_pap * c_cav
            myo = c_out - c_cav
            rest = 1.0 - c_out
            rvb = c_rv * rest
            rvw = np.clip(c_rvw - c_rv, 0.0, 1.0) * rest
            rest2 = rest - rvb - rvw
            atb = c_atr * above * rest2
            atw = np.clip(c_atrw - c_atr, 0.0, 1.0) * above * rest2
            rest3 = rest2 - atb - atw
            fat = cov_disc(rho, (r["r_out"] + fat_w) * (r["r_out"] > 0), px) * rest3
            acc["blood"] = acc["blood"] + (c_cav - pap + rvb + atb)
            acc["myo"] = acc["myo"] + (myo + pap + rvw + atw)
            acc["fat"] = acc["fat"] + fat
            acc["bg"] = acc["bg"] + (rest3 - fat)
            acc["cav"] = acc["cav"] + c_cav
            acc["lvm"] = acc["lvm"] + myo
            acc["rv"] = acc["rv"] + rvb
        m = 1.0 / len(_SUBSAMPLES)
        blood_tex = tissue["blood"] * (1.0 + 0.04 * tex_fine[sl])
        image[..., k, :] = bg[..., None]
        heart_part = (
            m * (acc["blood"] * blood_tex + acc["myo"] * tissue["myo"] + acc["fat"] * tissue["fat"])
            + m * acc["bg"] * bg[sl]
        )
        heart_part += (
            m
            * acc["lvm"]
            * (tissue["myo"] * TEXTURE_AMPLITUDE)
            * _myo_texture(motion, heart, k, z_k, rho, ang, acc["lvm"])
        )
        # Point spread in-plane (the background was blurred alone above).
        heart_part = ndimage.gaussian_filter(heart_part, sigma=(0, 0.5, 0.5), mode="nearest")
        image[i0:i1, j0:j1, k, :] = np.moveaxis(heart_part, 0, -1)
        lab_bg = len(_SUBSAMPLES) - acc["cav"] - acc["lvm"] - acc["rv"]
        stack = np.stack([lab_bg, acc["cav"], acc["lvm"], acc["rv"]])
        labels[i0:i1, j0:j1, k, :] = np.moveaxis(np.argmax(stack, axis=0), 0, -1).astype(np.uint8)

    image, scale, sigma = acquire(image, rng, with_params=True)

    ecc, err, ecc_normal, strain_slices = strain_truth(heart, slice_z, motion, labels[..., 0])

    # Frame order: ~20 % of cines start elsewhere in the cycle (ED is not frame 0).
    shift = int(rng.integers(1, n_frames)) if rng.random() < SHIFTED_FRACTION else 0
    image = np.roll(image, shift, axis=3)
    labels = np.roll(labels, shift, axis=3)
    ed_frame, es_frame = shift, (es0 + shift) % n_frames

    affine = _affine(rng, px, phi, cx, cy, slice_z[0])
    zooms = (px, px, SLICE_SPACING_MM, dt)
    truth, curves = _truth(row, heart, labels, px, dt, ed_frame, es_frame, shape, rr_ms, slice_z)
    # Heart frame -> world, through the short axis's voxel grid: (i, j, k) -> (u, v, z) is
    # linear, so the long-axis views share the stack's world coordinates.
    to_heart = np.eye(4)
    rot = np.array([[np.cos(phi), np.sin(phi)], [-np.sin(phi), np.cos(phi)]])  # px -> scene
    to_uv = np.array([[-rvx, -rvy], [-rvy, rvx]]) @ rot * px
    to_heart[:2, :2] = to_uv
    to_heart[:2, 3] = -to_uv @ np.array([cx, cy])
    to_heart[2, 2], to_heart[2, 3] = -SLICE_SPACING_MM, slice_z[0]
    heart_to_world = affine @ np.linalg.inv(to_heart)
    la_views = {
        view: render_long_axis(
            view, heart, atria, root, heart_to_world, tissue, n_frames, dt, rng_la
        )
        for view in views
    }
    atrial_t, atrial_curves = atrial_truth_tables(row, atria, la_views, dt)
    truth.update(atrial_t)
    truth.update(strain_truth_columns(ecc, err, ecc_normal, motion, strain_slices))
    order = (np.arange(n_frames) - ed_frame) % n_frames  # image frame -> cycle frame
    curves["Ecc_global"] = ecc[16][order]
    curves["Err_global"] = err[16][order]
    truth.update(
        n_frames=n_frames,
        n_slices=n_slices,
        matrix=n_xy,
        pixel_mm=px,
        frame_interval_ms=dt,
        intensity_scale=scale,
        noise_sigma=sigma,
    )
    return Subject(image, labels, affine, zooms, truth, curves, slice_z, la_views, atrial_curves)


def _myo_texture(motion, heart: Heart, k: int, z_k: float, rho, ang, lvm) -> np.ndarray:
    """Myocardial texture (SD 1, zero outside the LV wall) at each voxel's ED material point,
    (frames, crop); only voxels with LV myocardium are sampled."""
    out = np.zeros(lvm.shape, np.float32)
    t_idx, i_idx, j_idx = np.nonzero(lvm > 0)
    if t_idx.size == 0:
        return out
    r = heart.radii(np.array(z_k))
    r_in, r_out = r["r_in"], r["r_out"]
    rho_v, ang_v = rho[0, i_idx, j_idx], ang[0, i_idx, j_idx]
    r_in_k, r_out_k = moving_radii(r_in[t_idx], r_out[t_idx], r_in[0], r_out[0], motion.k(k, ang_v))
    out[t_idx, i_idx, j_idx] = texture_at(motion, rho_v, ang_v, r_in_k, r_out_k, r_in[0], r_out[0])
    return out


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
