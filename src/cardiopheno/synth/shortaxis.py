"""The short-axis stack's voxels, slice by slice: the static chest and the heart's partial volume.

:func:`cardiopheno.synth.imaging.simulate_subject` draws a :class:`StackScene` (the heart, its
pose on the pixel grid, the tissue contrast, the chest and its textures) and renders it with
:func:`render_stack`; the partial-volume model is described in that module's docstring. Each
slice paints the chest first, then, inside the box the heart can reach in any frame, the class
fractions averaged over :data:`SUBSAMPLES` depths through the slab: LV cavity and wall (angle
dependent where the wall is hypokinetic), RV and its wall, papillary muscles (mid-ventricle),
atria and aortic root above the base, and epicardial fat.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np
from scipy import ndimage

from cardiopheno.synth.acquisition import (
    cov_disc,
    cov_distance,
    ellipse_cov_scene,
    ellipse_distance,
    smooth_field,
)
from cardiopheno.synth.anatomy import SLICE_THICKNESS_MM, Heart
from cardiopheno.synth.atria import Atrium
from cardiopheno.synth.motion import TEXTURE_AMPLITUDE, WallMotion, moving_radii, texture_at

SUBSAMPLES = np.array([-1.0, 0.0, 1.0]) * SLICE_THICKNESS_MM / 3.0  # through the slab
RV_WALL_MM = 3.0
ATRIAL_WALL_MM = 2.5
_FRACTIONS = ("blood", "myo", "fat", "bg", "cav", "lvm", "rv")  # accumulated over the slab


@dataclass(frozen=True)
class InPlaneGrid:
    """The slices' pixel grid and the heart's pose on it: scene (``sx``, ``sy``; +x patient left,
    +y posterior, LV at the origin) and heart-frame (``hu``, ``hv``; RV towards -u) mm coordinates
    of every pixel centre."""

    n_xy: int
    px: float
    cx: float
    cy: float
    phi: float  # scene rotation relative to the pixel axes
    rv_angle: float  # direction of the RV in the scene
    sx: np.ndarray
    sy: np.ndarray
    hu: np.ndarray
    hv: np.ndarray

    def rv_direction(self) -> tuple[float, float]:
        return np.cos(self.rv_angle), np.sin(self.rv_angle)


def draw_grid(rng: np.random.Generator) -> InPlaneGrid:
    """Matrix size, pixel size, the heart's position and the scene's and RV's rotations."""
    n_xy = int(rng.integers(64, 81)) * 2
    px = float(np.float32(rng.uniform(1.7, 1.9)))  # as stored in the header (float32)
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
    return InPlaneGrid(n_xy, px, cx, cy, phi, rv_angle, sx, sy, hu, hv)


def draw_thorax(rng: np.random.Generator) -> dict:
    """Body, lungs, liver, stomach, spine, descending aorta and pericardial fat (scene mm)."""
    return {
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


@dataclass(frozen=True)
class StackScene:
    """Everything the short-axis voxels are rendered from."""

    heart: Heart
    atria: tuple[Atrium, Atrium]
    root: tuple[float, float, float]  # aortic root (u, v, radius), heart frame
    motion: WallMotion
    grid: InPlaneGrid
    tissue: dict[str, float]
    thorax: dict
    tex: np.ndarray  # (3, n_xy, n_xy) smooth fields: chest signal, fat, lung vessels
    tex_fine: np.ndarray  # (n_xy, n_xy) blood texture
    fat_theta: float  # where the epicardial fat is thickest
    pap_theta: np.ndarray  # heart-frame angles of the two papillary muscles

    @property
    def lv_length(self) -> float:
        return (1.0 + self.heart.tau) * self.heart.c[0]


def draw_textures(rng: np.random.Generator, n_xy: int) -> tuple[np.ndarray, np.ndarray]:
    """The chest's three smooth fields and the blood's fine texture."""
    tex = smooth_field(rng, (3, n_xy, n_xy), 3.0)
    tex_fine = smooth_field(rng, (n_xy, n_xy), 1.0)
    return tex, tex_fine


def draw_fat_and_papillary(rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """Angle of the thickest epicardial fat and of the two papillary muscles (heart frame)."""
    fat_theta = rng.uniform(0, 2 * np.pi)
    pap_theta = np.deg2rad(rng.uniform(35, 55, size=2)) * np.array([1, -1])
    return fat_theta, pap_theta


def thorax_background(sx, sy, depth: float, px: float, tissue: dict, tex: np.ndarray, p: dict):
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


def render_stack(
    scene: StackScene, slice_z: np.ndarray, n_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free image (float32) and majority labels (uint8), X x Y x slices x frames, in cycle
    order (frame 0 = ED)."""
    n_xy, n_slices = scene.grid.n_xy, len(slice_z)
    image = np.empty((n_xy, n_xy, n_slices, n_frames), np.float32)
    labels = np.zeros((n_xy, n_xy, n_slices, n_frames), np.uint8)
    for k in range(n_slices):
        bg = _slice_background(scene, k, slice_z[k])
        image[..., k, :] = bg[..., None]
        patch = _Patch.cut(scene, _heart_box(scene, slice_z[k]))
        acc = _slab_fractions(scene, k, slice_z[k], patch)
        box = patch.box + (k, slice(None))
        image[box] = _heart_signal(scene, k, slice_z[k], patch, acc, bg[patch.box])
        labels[box] = _majority_labels(acc)
    return image, labels


def _slice_background(scene: StackScene, k: int, z_k: float) -> np.ndarray:
    """The chest of slice ``k``, its textures shifted per slice, blurred (point spread)."""
    depth_k = float(np.clip(-z_k / scene.lv_length, 0.0, 1.0))
    tex_k = np.roll(scene.tex, shift=(2 * k, -k), axis=(1, 2))
    g = scene.grid
    bg = thorax_background(g.sx, g.sy, depth_k, g.px, scene.tissue, tex_k, scene.thorax)
    return ndimage.gaussian_filter(bg, 0.5)


def _heart_box(scene: StackScene, z_k: float) -> tuple[slice, slice]:
    """Bounding box (pixel slices) of the heart in this slice: all frames, all sub-samples."""
    heart, g = scene.heart, scene.grid
    la, ra = scene.atria
    r_atria = [(la.u, la.v, la.radius.max()), (ra.u, ra.v, ra.radius.max()), scene.root]
    reach = 0.0
    for dz in SUBSAMPLES:
        r = heart.radii(z_k + dz)
        reach = max(
            reach,
            float(np.max(r["r_out"] + 6.0)),
            float(np.max(r["rv_d"] + r["rv_x"] + RV_WALL_MM)),
            float(np.max(r["rv_y"] + RV_WALL_MM)),
        )
        if np.any(z_k + dz > heart.z_base):
            reach = max(reach, max(np.hypot(u, v) + rad for u, v, rad in r_atria) + 4.0)
    reach += 2.0 * g.px
    i0, i1 = (
        int(max(0, np.floor(g.cx - reach / g.px))),
        int(min(g.n_xy, np.ceil(g.cx + reach / g.px) + 1)),
    )
    j0, j1 = (
        int(max(0, np.floor(g.cy - reach / g.px))),
        int(min(g.n_xy, np.ceil(g.cy + reach / g.px) + 1)),
    )
    return slice(i0, i1), slice(j0, j1)


@dataclass(frozen=True)
class _Patch:
    """Heart-frame coordinates of the box's pixels (leading axis 1, for frames)."""

    box: tuple[slice, slice]
    u: np.ndarray
    v: np.ndarray
    rho: np.ndarray
    ang: np.ndarray
    fat_w: np.ndarray  # epicardial fat thickness by angle, mm
    rho_atr: list[np.ndarray]  # distance from each atrium's axis
    rho_root: np.ndarray  # distance from the aortic root's axis

    @classmethod
    def cut(cls, scene: StackScene, box: tuple[slice, slice]) -> _Patch:
        u, v = scene.grid.hu[box][None], scene.grid.hv[box][None]
        rho = np.hypot(u, v)
        ang = np.arctan2(v, u)
        fat_w = (
            np.float32(1.0)
            + np.float32(3.5) * np.clip(np.cos(ang - scene.fat_theta), 0.0, None) ** 2
        )
        rho_atr = [np.hypot(u - a.u, v - a.v) for a in scene.atria]
        rho_root = np.hypot(u - scene.root[0], v - scene.root[1])
        return cls(box, u, v, rho, ang, fat_w, rho_atr, rho_root)


def _slab_fractions(scene: StackScene, k: int, z_k: float, patch: _Patch) -> dict:
    """Class fractions summed over the slab's sub-samples, (frames, box) each."""
    px, lv_length = scene.grid.px, scene.lv_length
    acc = {key: 0.0 for key in _FRACTIONS}
    for dz in SUBSAMPLES:
        z = z_k + dz
        r = {
            key: val[:, None, None].astype(np.float32) for key, val in scene.heart.radii(z).items()
        }
        c_cav, c_out = _lv_coverage(scene.motion, k, r, patch, px)
        c_rv, c_rvw = _rv_coverage(r, patch, px)
        c_pap = _papillary_coverage(scene, z, r, patch, px, lv_length)
        above = (z > scene.heart.z_base)[:, None, None]
        c_atr, c_atrw = _atrial_coverage(scene, z, above, patch, px)
        pap = c_pap * c_cav
        myo = c_out - c_cav
        rest = 1.0 - c_out
        rvb = c_rv * rest
        rvw = np.clip(c_rvw - c_rv, 0.0, 1.0) * rest
        rest2 = rest - rvb - rvw
        atb = c_atr * above * rest2
        atw = np.clip(c_atrw - c_atr, 0.0, 1.0) * above * rest2
        rest3 = rest2 - atb - atw
        fat = cov_disc(patch.rho, (r["r_out"] + patch.fat_w) * (r["r_out"] > 0), px) * rest3
        acc["blood"] = acc["blood"] + (c_cav - pap + rvb + atb)
        acc["myo"] = acc["myo"] + (myo + pap + rvw + atw)
        acc["fat"] = acc["fat"] + fat
        acc["bg"] = acc["bg"] + (rest3 - fat)
        acc["cav"] = acc["cav"] + c_cav
        acc["lvm"] = acc["lvm"] + myo
        acc["rv"] = acc["rv"] + rvb
    return acc


def _lv_coverage(motion: WallMotion, k: int, r: dict, patch: _Patch, px: float):
    """LV cavity and epicardial coverage; a hypokinetic wall's radii depend on angle."""
    if motion.factor[k].min() < 1.0:
        r_in_k, r_out_k = moving_radii(
            r["r_in"], r["r_out"], r["r_in"][:1], r["r_out"][:1], motion.k(k, patch.ang)
        )
        return (
            cov_disc(patch.rho, r_in_k.astype(np.float32), px),
            cov_disc(patch.rho, r_out_k.astype(np.float32), px),
        )
    return cov_disc(patch.rho, r["r_in"], px), cov_disc(patch.rho, r["r_out"], px)


def _rv_coverage(r: dict, patch: _Patch, px: float):
    """RV cavity and RV cavity-plus-wall coverage (0 where the RV does not reach)."""
    if np.any(r["rv_x"] > 0):
        sd_rv = ellipse_distance(patch.u + r["rv_d"], patch.v, r["rv_x"], r["rv_y"])
        return cov_distance(sd_rv, px), cov_distance(sd_rv, px, RV_WALL_MM)
    return np.float32(0.0), np.float32(0.0)


def _papillary_coverage(scene: StackScene, z, r: dict, patch: _Patch, px: float, lv_length):
    """Coverage of the two papillary muscles, present mid-ventricle only."""
    heart = scene.heart
    mid = (z < heart.z_base[:, None, None] - 0.2 * lv_length) & (z > heart.z_apex + 0.3 * lv_length)
    c_pap = 0.0
    for th in scene.pap_theta if mid.any() else ():
        pr = 0.72 * r["r_in"]
        dx, dy = patch.u - pr * np.cos(th), patch.v - pr * np.sin(th)
        dist = np.sqrt(dx * dx + dy * dy)
        c_pap = np.maximum(c_pap, cov_disc(dist, 0.13 * r["r_in"] * mid, px))
    return c_pap


def _atrial_coverage(scene: StackScene, z, above: np.ndarray, patch: _Patch, px: float):
    """Coverage of the atria (sections of truncated ellipsoids) and the aortic root (a
    cylinder) above the base, without and with their walls."""
    if not above.any():
        return np.float32(0.0), np.float32(0.0)
    root_r = scene.root[2]
    r_at = [a.section_radius(z, scene.heart.z_base)[:, None, None] for a in scene.atria]
    c_atr = reduce(
        np.maximum,
        [cov_disc(rho, r, px) for rho, r in zip(patch.rho_atr, r_at, strict=True)]
        + [cov_disc(patch.rho_root, np.float32(root_r), px)],
    )
    c_atrw = reduce(
        np.maximum,
        [
            cov_disc(rho, (r + ATRIAL_WALL_MM) * (r > 0), px)
            for rho, r in zip(patch.rho_atr, r_at, strict=True)
        ]
        + [cov_disc(patch.rho_root, np.float32(root_r + ATRIAL_WALL_MM), px)],
    )
    return c_atr, c_atrw


def _heart_signal(scene: StackScene, k: int, z_k: float, patch: _Patch, acc: dict, bg_box):
    """The box's signal, (box x, box y, frames): tissue fractions times contrast, myocardial
    texture, in-plane point spread (the background was blurred alone)."""
    tissue = scene.tissue
    m = 1.0 / len(SUBSAMPLES)
    blood_tex = tissue["blood"] * (1.0 + 0.04 * scene.tex_fine[patch.box])
    heart_part = (
        m * (acc["blood"] * blood_tex + acc["myo"] * tissue["myo"] + acc["fat"] * tissue["fat"])
        + m * acc["bg"] * bg_box
    )
    heart_part += (
        m
        * acc["lvm"]
        * (tissue["myo"] * TEXTURE_AMPLITUDE)
        * _myo_texture(scene.motion, scene.heart, k, z_k, patch.rho, patch.ang, acc["lvm"])
    )
    heart_part = ndimage.gaussian_filter(heart_part, sigma=(0, 0.5, 0.5), mode="nearest")
    return np.moveaxis(heart_part, 0, -1)


def _majority_labels(acc: dict) -> np.ndarray:
    """The majority class of the slab's fractions: 0 background, 1 LV cavity, 2 LV myocardium,
    3 RV cavity; (box x, box y, frames)."""
    lab_bg = len(SUBSAMPLES) - acc["cav"] - acc["lvm"] - acc["rv"]
    stack = np.stack([lab_bg, acc["cav"], acc["lvm"], acc["rv"]])
    return np.moveaxis(np.argmax(stack, axis=0), 0, -1).astype(np.uint8)


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
