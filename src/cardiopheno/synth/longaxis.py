"""Long-axis 2- and 4-chamber cines cut from the same 3D phantom as the short-axis stack.

A long-axis view is a 6 mm slab through the LV long axis: the 4-chamber plane runs along the
septal-lateral direction (through the RV and both atria), the 2-chamber plane about 90 degrees
from it (LV anterior and inferior walls and the LA). Every pixel is sampled 2 x 2 in-plane and at
3 depths through the slab against the phantom's exact surfaces (LV cavity and myocardium, RV and
its wall, both atria and their walls, mitral leaflets, the aortic root), so edges carry partial
volume; labels are the majority class of the same fractions, in the ukbb_cardiac convention of
``seg4_la_4ch`` (1 LV cavity, 2 LV myocardium, 3 RV, 4 LA, 5 RA), from which ``seg_la_2ch``
(1 LA) and ``seg_la_4ch`` (1 LA, 2 RA) follow. The chest around the heart (body wall, fat, lungs,
liver, descending aorta) is painted in the same plane; acquisition (blur, coil bias, intensity
scale, Rician noise) is the short axis's (:func:`cardiopheno.synth.acquisition.acquire`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cardiopheno.synth.acquisition import acquire, cov_disc, ellipse_cov_scene, smooth_field
from cardiopheno.synth.anatomy import APEX_THICKNESS_RATIO, Heart
from cardiopheno.synth.atria import Atrium

LA_SLICE_THICKNESS_MM = 6.0
_SLAB = np.array([-1.0, 0.0, 1.0]) * LA_SLICE_THICKNESS_MM / 3.0
_SUB = np.array([-0.25, 0.25])  # in-plane sub-pixel offsets (pixels)
RV_WALL_MM, ATRIAL_WALL_MM, FAT_MM = 3.0, 2.5, 4.0
AORTIC_ROOT_MM = 13.0
# Label fractions, in the seg4_la_4ch order (0 background).
N_LA_CLASSES = 6
LONG_AXIS_VIEWS = ("la_2ch", "la_4ch")


@dataclass
class ViewImage:
    """A rendered single-slice cine: image int16 X x Y x 1 x T, labels uint8 (view convention)."""

    image: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    zooms: tuple[float, float, float, float]
    plane_offset: dict[str, float]  # distance (mm) of each atrium's centre from the plane


def view_labels(view: str, seg4: np.ndarray) -> np.ndarray:
    """The view's label convention from the 4-chamber classes: la_2ch 1 LA; la_4ch keeps all."""
    if view == "la_2ch":
        return (seg4 == 4).astype(np.uint8)
    return seg4


def _plane_angle(view: str, rng: np.random.Generator) -> float:
    if view == "la_4ch":
        return float(np.deg2rad(rng.normal(0.0, 5.0)))
    return float(np.deg2rad(90.0 + rng.normal(0.0, 6.0)))


def _scene(rng: np.random.Generator, s_lo: float, s_hi: float, z_apex: float) -> list:
    """Static chest in the plane: (centre (s, z), axes, angle, tissue) painted in order."""
    mid = 0.5 * (s_lo + s_hi)
    return [
        ((mid + rng.uniform(-10, 10), z_apex + 60), (rng.uniform(170, 190), rng.uniform(150, 170)),
         rng.uniform(-0.1, 0.1), "fat"),
        ((mid, z_apex + 60), (rng.uniform(150, 165), rng.uniform(130, 145)), 0.0, "muscle"),
        ((mid, z_apex + 60), (rng.uniform(130, 145), rng.uniform(115, 128)), 0.0, "soft"),
        ((s_hi + rng.uniform(25, 40), z_apex + rng.uniform(70, 90)),
         (rng.uniform(38, 48), rng.uniform(80, 95)), 0.15, "lung"),
        ((s_lo - rng.uniform(25, 40), z_apex + rng.uniform(70, 90)),
         (rng.uniform(38, 48), rng.uniform(80, 95)), -0.15, "lung"),
        ((s_lo + rng.uniform(10, 30), z_apex - rng.uniform(25, 40)),
         (rng.uniform(70, 90), rng.uniform(35, 45)), 0.2, "liver"),
    ]  # fmt: skip


def _paint(sx, sy, scene, tissue, px):

    img = np.zeros(sx.shape, np.float32)
    for centre, axes, angle, name in scene:
        cov = ellipse_cov_scene(sx, sy, centre, axes, angle, px)
        img = img * (1.0 - cov) + tissue[name] * cov
    return img


def _fractions(heart: Heart, atria, root, u, v, z, f: int, fat_tex):
    """Class fractions (N_LA_CLASSES) plus blood, myocardium-like and fat fractions at sample
    points (..., n_samples) for cycle frame f: booleans averaged over the last axis."""
    a, c, t = heart.a[f], heart.c[f], heart.t[f]
    zb = heart.z_base[f]
    zc = heart.z_c[f]
    below = z <= zb
    rho2 = u * u + v * v
    big_c = c + APEX_THICKNESS_RATIO * t
    cav = below & (rho2 / a**2 + ((z - zc) / c) ** 2 <= 1.0)
    q_out = rho2 / (a + t) ** 2 + ((z - zc) / big_c) ** 2
    outer = below & (q_out <= 1.0)
    r_out = (a + t) * np.sqrt(np.clip(1.0 - ((z - zc) / big_c) ** 2, 0.0, None))
    rv_d = heart.kappa * r_out
    rx, ry = heart.rv_scale[f] * heart.rho_x, heart.rv_scale[f] * heart.rho_y
    length = heart.rv_length[f]
    du, dz = u + rv_d, zb - z
    rv = below & ~outer & ((du / rx) ** 2 + (v / ry) ** 2 + (dz / length) ** 2 <= 1.0)
    g = RV_WALL_MM
    rvw = (
        below
        & ~outer
        & ~rv
        & ((du / (rx + g)) ** 2 + (v / (ry + g)) ** 2 + (dz / (length + g)) ** 2 <= 1.0)
    )
    above = ~below
    la_at, ra_at = atria
    la = above & (la_at.implicit(u, v, z, f, zb) <= 1.0)
    ra = above & ~la & (ra_at.implicit(u, v, z, f, zb) <= 1.0)
    walls = above & ~la & ~ra
    atw = walls & (
        (la_at.implicit(u, v, z, f, zb, ATRIAL_WALL_MM) <= 1.0)
        | (ra_at.implicit(u, v, z, f, zb, ATRIAL_WALL_MM) <= 1.0)
    )
    ru, rv_, rr = root
    aorta = above & ~la & ~ra & ~atw & ((u - ru) ** 2 + (v - rv_) ** 2 <= rr * rr)
    aorta &= z < la_at.z_roof + 20.0
    # Mitral leaflets: a thin partial line across the orifice (half myocardium-like).
    r_mv = a * np.sqrt(max(0.0, 1.0 - ((zb - zc) / c) ** 2))
    leaflet = (np.abs(z - zb) < 1.0) & (rho2 < r_mv * r_mv)
    q_fat = rho2 / (a + t + FAT_MM) ** 2 + ((z - zc) / (big_c + FAT_MM)) ** 2
    fat = below & ~outer & ~rv & ~rvw & (q_fat <= 1.0)
    inv = np.float32(1.0 / u.shape[-1])
    m = lambda b: np.count_nonzero(b, axis=-1).astype(np.float32) * inv  # noqa: E731
    myo = outer & ~cav
    cls = np.stack(
        [np.zeros(u.shape[:-1], np.float32), m(cav), m(myo), m(rv), m(la), m(ra)], axis=0
    )
    cls[0] = 1.0 - cls[1:].sum(axis=0)
    blood = m(cav | rv | la | ra | aorta) - 0.5 * m(leaflet & (cav | la))
    myo_like = m(myo | rvw | atw) + 0.5 * m(leaflet & (cav | la))
    fat_f = m(fat) * fat_tex
    return cls, blood, myo_like, fat_f


@dataclass(frozen=True)
class _Plane:
    """The view's plane in the heart frame and its pixel grid.

    The plane runs along ``d`` (in-plane direction (u, v) of s) and the LV axis (z), ``w0`` mm
    off the axis along ``nrm``; pixel (i, j) -> plane (s, z) is ``base @ (i, j) + offset``. The
    heart's extent in the plane is ``s_lo..s_hi`` by ``z_apex..z_top``.
    """

    d: np.ndarray
    nrm: np.ndarray
    w0: float
    nx: int
    ny: int
    px: float
    base: np.ndarray
    offset: np.ndarray
    sx: np.ndarray  # s of every pixel centre, mm
    sy: np.ndarray  # z of every pixel centre, mm
    s_lo: float
    s_hi: float
    z_apex: float
    z_top: float


def _draw_plane(view: str, heart: Heart, atria, rng: np.random.Generator) -> _Plane:
    """Orientation, offset, matrix and pixel size of the view; the heart's box centred, turned."""
    psi = _plane_angle(view, rng)
    d = np.array([np.cos(psi), np.sin(psi)])  # in-plane direction (u, v) of s
    nrm = np.array([-d[1], d[0]])
    w0 = float(rng.normal(0.0, 1.5))  # the plane misses the LV axis by a little
    nx, ny = int(rng.integers(88, 105)) * 2, int(rng.integers(80, 97)) * 2
    px = float(np.float32(rng.uniform(1.7, 1.9)))
    theta = float(np.deg2rad(rng.normal(0.0, 12.0)))  # apex up, give or take
    la, ra = atria
    z_apex = float(heart.z_apex - APEX_THICKNESS_RATIO * heart.t.max())
    z_top = float(max(la.z_roof, ra.z_roof))
    s_lo = float(min((np.array([ra.u, ra.v]) @ d) - ra.radius.max(), -60.0))
    s_hi = float(max(heart.a.max() + heart.t.max(), la.radius.max()) + 5.0)
    # Plane coordinates (s, z) of pixel centres: the heart's box centred, turned by theta.
    ci = (nx - 1) / 2.0 + rng.uniform(-8, 8) / px
    cj = (ny - 1) / 2.0 + rng.uniform(-8, 8) / px
    s0, z0 = 0.5 * (s_lo + s_hi), 0.5 * (z_apex + z_top)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    # pixel (i, j) -> (s, z): i along s, j along -z (apex towards row 0), then rotated
    base = rot @ np.array([[px, 0.0], [0.0, -px]])
    offset = np.array([s0, z0]) - base @ np.array([ci, cj])
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    sz = np.einsum("ab,bij->aij", base, np.stack([ii, jj]).astype(float)) + offset[:, None, None]
    sx, sy = sz[0].astype(np.float32), sz[1].astype(np.float32)
    return _Plane(d, nrm, w0, nx, ny, px, base, offset, sx, sy, s_lo, s_hi, z_apex, z_top)


def _chest(plane: _Plane, tissue: dict[str, float], rng: np.random.Generator):
    """The static chest in the plane, blurred (point spread), and its smooth fields."""
    sx, sy, px = plane.sx, plane.sy, plane.px
    tex = smooth_field(rng, (2, plane.nx, plane.ny), 3.0)
    bg = _paint(sx, sy, _scene(rng, plane.s_lo, plane.s_hi, plane.z_apex), tissue, px)
    lung = np.isclose(bg, tissue["lung"], atol=0.02)
    bg *= 1.0 + 0.10 * tex[0]
    bg = np.where(lung, bg + 0.05 * np.clip(tex[1], 0, None), bg)
    s0 = 0.5 * (plane.s_lo + plane.s_hi)
    dao = (  # descending aorta behind the atria
        s0 + rng.uniform(-20, 20),
        plane.z_top + rng.uniform(5, 20),
    )

    bg = bg * (1 - cov_disc(np.hypot(sx - dao[0], sy - dao[1]), 11.0, px)) + 0.85 * cov_disc(
        np.hypot(sx - dao[0], sy - dao[1]), 11.0, px
    )
    return ndimage.gaussian_filter(bg, 0.5), tex


@dataclass(frozen=True)
class _HeartSamples:
    """The pixels within the heart's reach (``idx``) and their sample points: 2 x 2 in-plane by
    3 depths through the slab (N x 12, heart frame), with their fat and blood textures."""

    idx: tuple[np.ndarray, np.ndarray]
    u: np.ndarray
    v: np.ndarray
    z: np.ndarray
    fat_tex: np.ndarray
    blood_tex: np.ndarray


def _heart_samples(plane: _Plane, tex, tissue, rng: np.random.Generator) -> _HeartSamples:
    """Sample points of the pixels whose centre lies within the heart's reach."""
    sx, sy, px = plane.sx, plane.sy, plane.px
    margin = 12.0
    box = (sx > plane.s_lo - margin) & (sx < plane.s_hi + margin) & (sy > plane.z_apex - margin)
    box &= sy < plane.z_top + margin
    idx = np.nonzero(box)
    sub = np.array([[a_, b_] for a_ in _SUB for b_ in _SUB]) * px  # 4 x 2 (p, q) offsets, mm
    sub_sz = sub @ plane.base.T / px  # offsets in (s, z)
    s_pts = sx[idx][:, None] + sub_sz[None, :, 0]  # N x 4
    z_pts = sy[idx][:, None] + sub_sz[None, :, 1]
    s_pts = np.repeat(s_pts, len(_SLAB), axis=1)
    z_pts = np.repeat(z_pts, len(_SLAB), axis=1)
    w_pts = np.tile(_SLAB, 4)[None, :] + plane.w0
    d, nrm = plane.d, plane.nrm
    u = (s_pts * d[0] + w_pts * nrm[0]).astype(np.float32)
    v = (s_pts * d[1] + w_pts * nrm[1]).astype(np.float32)
    z = z_pts.astype(np.float32)
    fat_tex = np.clip(1.5 * (tex[1][idx] - 0.2), 0.0, 1.0).astype(np.float32)
    blood_tex = (tissue["blood"] * (1.0 + 0.04 * smooth_field(rng, (plane.nx, plane.ny), 1.0)))[idx]
    return _HeartSamples(idx, u, v, z, fat_tex, blood_tex)


def _render_frames(heart: Heart, atria, root, pts: _HeartSamples, bg, tissue, n_frames: int):
    """Noise-free image (X x Y x T, point spread applied) and seg4 labels over the cycle."""
    idx = pts.idx
    image = np.repeat(bg[:, :, None], n_frames, axis=2)
    seg4 = np.zeros((*bg.shape, n_frames), np.uint8)
    for f in range(n_frames):
        cls, blood, myo, fat = _fractions(heart, atria, root, pts.u, pts.v, pts.z, f, pts.fat_tex)
        rest = np.clip(1.0 - blood - myo - fat, 0.0, 1.0)
        image[idx[0], idx[1], f] = (
            blood * pts.blood_tex + myo * tissue["myo"] + fat * tissue["fat"] + rest * bg[idx]
        )
        seg4[idx[0], idx[1], f] = np.argmax(cls, axis=0).astype(np.uint8)
    return ndimage.gaussian_filter(image, sigma=(0.5, 0.5, 0)), seg4


def _pixel_to_heart(plane: _Plane) -> np.ndarray:
    """Pixel (i, j, k) -> plane (s, z) -> heart frame (u, v, z)."""
    d, nrm, base, offset = plane.d, plane.nrm, plane.base, plane.offset
    to_heart = np.zeros((4, 4))
    to_heart[:2, 0] = d * base[0, 0]
    to_heart[:2, 1] = d * base[0, 1]
    to_heart[2, 0], to_heart[2, 1] = base[1, 0], base[1, 1]
    to_heart[:2, 2] = nrm * LA_SLICE_THICKNESS_MM
    to_heart[:2, 3] = d * offset[0] + nrm * plane.w0
    to_heart[2, 3] = offset[1]
    to_heart[3, 3] = 1.0
    return to_heart


def render_long_axis(
    view: str,
    heart: Heart,
    atria: tuple[Atrium, Atrium],
    root: tuple[float, float, float],
    heart_to_world: np.ndarray,
    tissue: dict[str, float],
    n_frames: int,
    dt_ms: float,
    rng: np.random.Generator,
) -> ViewImage:
    """Render ``view`` (``la_2ch`` or ``la_4ch``) over the cycle (frame 0 = ventricular ED)."""
    plane = _draw_plane(view, heart, atria, rng)
    bg, tex = _chest(plane, tissue, rng)
    samples = _heart_samples(plane, tex, tissue, rng)
    heart_part, seg4 = _render_frames(heart, atria, root, samples, bg, tissue, n_frames)
    image = acquire(heart_part[:, :, None, :], rng)
    offsets = {a.name: float(np.array([a.u, a.v]) @ plane.nrm - plane.w0) for a in atria}
    return ViewImage(
        image=image,
        labels=view_labels(view, seg4)[:, :, None, :],
        affine=heart_to_world @ _pixel_to_heart(plane),
        zooms=(plane.px, plane.px, LA_SLICE_THICKNESS_MM, dt_ms),
        plane_offset=offsets,
    )
