"""Long-axis training slices resliced from a real whole-heart segmentation, SynthSeg-style.

The phantom's ellipsoidal chambers taught the long-axis models nothing about real anatomy: on a
real 4-chamber cine they labelled the outflow tracts and the neck as atria and the RV as LV. Here
one real heart (a whole-heart CT segmentation with LV, myocardium, RV, both atria, the aorta and
the pulmonary artery: ``../shared/data/wholeheart``) is cut along 2- and 4-chamber planes found
from its own landmarks (apex, mitral and tricuspid valve centres), each cut tilted, shifted,
scaled and elastically deformed at random, and painted with random intensities per tissue in
the manner of SynthSeg (Billot et al., MedIA 2023), half of the time near bSSFP contrast (bright
blood and fat, dark muscle), half of the time any contrast. What the segmentation leaves
unlabelled (the chest) becomes random smooth tissue classes inside a body outline, with a thorax
placed by the slice's world directions (:func:`thorax`: dark lungs beside the heart, the liver
below a domed diaphragm, the descending aorta behind the left atrium, the spine behind it), and
thin walls and epicardial fat are grown around the chambers. The great vessels are painted as blood but
labelled background, so a network learns that bright blood in the outflow tracts is not an
atrium. Each slice keeps a world affine, so training sees it in the canonical orientation that
inference puts real cines in (:mod:`cardiopheno.segment.orientation`).

Why by hand: SynthSeg's generator is TensorFlow and 3D; this is a 2D slab sampler on a label
volume (scipy), a few dozen lines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from cardiopheno.synth.acquisition import smooth_field

# MM-WHS labels as renumbered in ../shared/data/wholeheart (README) -> seg4_la_4ch classes
# (1 LV cavity, 2 LV myocardium, 3 RV, 4 LA, 5 RA); the aorta (6) and pulmonary artery (7) are
# blood but background.
WHS_LV, WHS_MYO, WHS_LA, WHS_RA, WHS_RV, WHS_AO, WHS_PA = 3, 1, 2, 4, 5, 6, 7
_TO_SEG4 = np.array([0, 2, 4, 1, 5, 3, 0, 0], dtype=np.uint8)
_BLOOD = (WHS_LV, WHS_LA, WHS_RA, WHS_RV, WHS_AO, WHS_PA)
# painting classes beyond the WHS labels
_WALL, _FAT, _AIR, _BG0 = 8, 9, 10, 11
_N_BG = 5  # random chest tissue classes
# the thorax around the heart (:func:`thorax`)
_LUNG, _LIVER, _DAO, _SPINE, _LUNG_VESSEL = 16, 17, 18, 19, 20
_N_CLS = 21
GRID_MM = 1.0  # the anatomy is resampled to this isotropic grid once


@dataclass
class Anatomy:
    """A whole-heart label volume on an isotropic grid, with its landmarks (world mm, RAS)."""

    labels: np.ndarray  # uint8, WHS numbering
    affine: np.ndarray  # voxel -> world
    apex: np.ndarray
    mitral: np.ndarray
    tricuspid: np.ndarray


def load_anatomy(path: str | os.PathLike) -> Anatomy:
    """A whole-heart anatomy from a label NIfTI (MM-WHS numbering) or from a folder of closed
    blood-pool surfaces (:func:`mesh_labels`)."""
    if Path(path).is_dir():
        labels, affine = mesh_labels(path)
    else:
        img = nib.load(str(path))
        zooms = np.asarray(img.header.get_zooms()[:3], dtype=float)
        labels = np.rint(np.asarray(img.dataobj)).astype(np.uint8)
        labels = ndimage.zoom(labels, zooms / GRID_MM, order=0)
        affine = img.affine @ np.diag([*(GRID_MM / zooms), 1.0])

    def world(mask: np.ndarray) -> np.ndarray:
        ijk = np.argwhere(mask).mean(axis=0)
        return affine[:3, :3] @ ijk + affine[:3, 3]

    def valve(cavity: int, atrium: int) -> np.ndarray:
        near = ndimage.binary_dilation(labels == atrium, iterations=3)
        return world(near & (labels == cavity))

    mitral, tricuspid = valve(WHS_LV, WHS_LA), valve(WHS_RV, WHS_RA)
    myo = np.argwhere((labels == WHS_MYO) | (labels == WHS_LV))
    pts = myo @ affine[:3, :3].T + affine[:3, 3]
    apex = pts[np.argmax(np.linalg.norm(pts - mitral, axis=1))]
    return Anatomy(labels, affine, apex, mitral, tricuspid)


# blood-pool surfaces of a folder (Strocchi et al. 2020 as in ../shared/data/wholeheart) -> WHS
_SURFACES = {"left_ventricle": WHS_LV, "left_atrium": WHS_LA, "right_atrium": WHS_RA}
_SURFACES["right_ventricle"] = WHS_RV
LV_WALL_MM = 8.0
_RAY_OFFSET = (
    1.234e-4,
    2.345e-4,
)  # voxels  # the LV myocardium grown around a blood-pool-only anatomy


def read_ascii_stl(path: str | os.PathLike) -> np.ndarray:
    """Triangles (N x 3 x 3, mm) of an ASCII STL file."""
    with open(path) as fh:
        verts = [line.split()[1:4] for line in fh if line.lstrip().startswith("vertex")]
    return np.asarray(verts, dtype=float).reshape(-1, 3, 3)


def voxelise(triangles: np.ndarray, origin: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Inside of a closed surface on a GRID_MM grid (voxel centres origin + i * GRID_MM): rays
    along the third axis toggle at every crossing (parity)."""
    toggles = np.zeros((shape[0], shape[1], shape[2] + 1), np.int32)
    for tri in (triangles - origin) / GRID_MM:
        lo = np.maximum(np.ceil(tri[:, :2].min(axis=0)), 0).astype(int)
        hi = np.minimum(np.floor(tri[:, :2].max(axis=0)), np.array(shape[:2]) - 1).astype(int)
        if np.any(hi < lo):
            continue
        gx, gy = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1))
        # rays a hair off the grid so that none runs exactly along a shared edge
        rx, ry = gx + _RAY_OFFSET[0], gy + _RAY_OFFSET[1]
        (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = tri
        det = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
        if abs(det) < 1e-12:
            continue
        a = ((y1 - y2) * (rx - x2) + (x2 - x1) * (ry - y2)) / det
        b = ((y2 - y0) * (rx - x2) + (x0 - x2) * (ry - y2)) / det
        c = 1 - a - b
        inside = (a >= 0) & (b >= 0) & (c >= 0)
        z = np.ceil(a * z0 + b * z1 + c * z2)[inside].astype(int).clip(0, shape[2])
        np.add.at(toggles, (gx[inside], gy[inside], z), 1)
    return (np.cumsum(toggles, axis=2)[:, :, : shape[2]] % 2).astype(bool)


def mesh_labels(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """WHS labels (and their voxel -> RAS affine) from a folder of blood-pool STL surfaces in
    LPS millimetres (as the Strocchi cohort's), with an LV myocardium grown around the LV."""
    tris = {w: read_ascii_stl(Path(folder) / f"{n}.stl") for n, w in _SURFACES.items()}
    tris = {w: t * np.array([-1.0, -1.0, 1.0]) for w, t in tris.items()}  # LPS -> RAS
    every = np.concatenate([t.reshape(-1, 3) for t in tris.values()])
    origin = every.min(axis=0) - 20.0
    shape = tuple(int(v) for v in np.ceil((every.max(axis=0) + 20.0 - origin) / GRID_MM))
    labels = np.zeros(shape, np.uint8)
    for whs, t in tris.items():
        labels[voxelise(t, origin, shape) & (labels == 0)] = whs
    dist = ndimage.distance_transform_edt(labels != WHS_LV, sampling=GRID_MM)
    labels[(dist <= LV_WALL_MM) & (labels == 0)] = WHS_MYO
    affine = np.diag([GRID_MM, GRID_MM, GRID_MM, 1.0])
    affine[:3, 3] = origin
    return labels, affine


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _rotate(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' rotation of ``v`` about the unit ``axis``."""
    c, s = np.cos(angle), np.sin(angle)
    return v * c + np.cross(axis, v) * s + axis * (axis @ v) * (1 - c)


def plane(anatomy: Anatomy, view: str, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Centre, long-axis direction and normal of a randomly perturbed ``view`` plane."""
    axis = _unit(anatomy.mitral - anatomy.apex)  # apex -> base
    n4 = _unit(np.cross(axis, anatomy.tricuspid - anatomy.apex))
    if view == "la_2ch":  # turned about the long axis away from the RV
        angle = np.deg2rad(rng.uniform(60, 100))
        cands = [_rotate(n4, axis, s * angle) for s in (1.0, -1.0)]
        rv = anatomy.tricuspid - anatomy.apex
        normal = max(cands, key=lambda n: abs(n @ rv))  # RV off the plane
    else:
        normal = n4
    tilt = rng.normal(0.0, np.deg2rad(7.0), 2)
    side = _unit(np.cross(normal, axis))
    normal = _unit(_rotate(_rotate(normal, axis, tilt[0]), side, tilt[1]))
    axis = _unit(axis - (axis @ normal) * normal)
    centre = 0.5 * (anatomy.apex + anatomy.mitral) + normal * rng.normal(0.0, 3.0)
    centre += axis * rng.normal(0.0, 8.0) + np.cross(normal, axis) * rng.normal(0.0, 8.0)
    return centre, axis, normal


def cut(
    anatomy: Anatomy, view: str, rng: np.random.Generator, size: int = 192
) -> tuple[np.ndarray, np.ndarray, float]:
    """A ``size`` x ``size`` slab of WHS labels along a random ``view`` plane, its affine (world
    of the pixel grid, RAS) and its pixel size: scaled, elastically deformed, 6-8 mm thick."""
    centre, axis, normal = plane(anatomy, view, rng)
    px = float(rng.uniform(1.4, 2.1))
    turn = rng.uniform(0, 2 * np.pi)  # in-plane orientation of the stored grid: any
    side = np.cross(normal, axis)
    e_i = _rotate(side, normal, turn) * px
    e_j = _rotate(-axis, normal, turn) * px
    scale = rng.uniform(0.85, 1.2, 2)  # the heart larger or smaller along each in-plane axis
    ii, jj = np.meshgrid(np.arange(size) - size / 2, np.arange(size) - size / 2, indexing="ij")
    warp = rng.uniform(0.0, 5.0) / px  # elastic displacement, pixels
    di, dj = (smooth_field(rng, (size, size), size / 8) * warp for _ in range(2))
    u, v = (ii + di) / scale[0], (jj + dj) / scale[1]
    depths = np.linspace(-0.5, 0.5, 4) * rng.uniform(6.0, 8.0)
    to_vox = np.linalg.inv(anatomy.affine)
    votes = np.zeros((8, size, size), np.int16)
    for w in depths:
        pts = centre[:, None, None] + e_i[:, None, None] * u + e_j[:, None, None] * v
        pts = pts + normal[:, None, None] * w
        vox = np.tensordot(to_vox[:3, :3], pts, axes=1) + to_vox[:3, 3, None, None]
        lab = ndimage.map_coordinates(anatomy.labels, vox, order=0, mode="constant", cval=0)
        for k in range(8):
            votes[k] += lab == k
    labels = np.argmax(votes, axis=0).astype(np.uint8)
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = e_i, e_j, normal * 6.0
    affine[:3, 3] = centre - e_i * size / 2 - e_j * size / 2
    return labels, affine, px


def _systole(labels: np.ndarray, rng: np.random.Generator, px: float) -> np.ndarray:
    """Half of the time a systole-like cut: ventricular cavities shrink into their walls."""
    if rng.random() < 0.5:
        return labels
    out = labels.copy()
    r = max(1, int(round(rng.uniform(1.0, 5.0) / px)))
    lv = labels == WHS_LV
    out[lv & ~ndimage.binary_erosion(lv, iterations=r)] = WHS_MYO
    rv = labels == WHS_RV
    out[rv & ~ndimage.binary_erosion(rv, iterations=max(1, r - 1))] = _WALL
    return out


def paint_classes(labels: np.ndarray, rng: np.random.Generator, px: float) -> np.ndarray:
    """WHS labels plus grown walls and fat, and a chest of random smooth classes in a body."""
    out = labels.copy()
    heart = labels > 0
    blood = np.isin(labels, [WHS_RV, WHS_LA, WHS_RA, WHS_AO, WHS_PA])
    wall = ndimage.binary_dilation(blood, iterations=max(1, round(rng.uniform(1.5, 3.5) / px)))
    out[wall & ~heart] = _WALL
    grown = ndimage.binary_dilation(out > 0, iterations=max(1, round(rng.uniform(2, 8) / px)))
    fat = grown & (out == 0) & (smooth_field(rng, labels.shape, 4) > rng.uniform(-1.0, 0.5))
    out[fat] = _FAT
    n = labels.shape[0]
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    c = n / 2 + rng.normal(0, n / 20, 2)
    ax = rng.uniform(0.35, 0.55, 2) * n
    body = ((ii - c[0]) / ax[0]) ** 2 + ((jj - c[1]) / ax[1]) ** 2 <= 1
    field = smooth_field(rng, labels.shape, rng.uniform(4, 12))
    edges = np.quantile(field, np.sort(rng.uniform(0, 1, _N_BG - 1)))
    chest = _BG0 + np.digitize(field, edges)
    rest = out == 0
    out[rest & body] = chest[rest & body]
    out[rest & ~body] = _AIR
    return out


def _unit_in_plane(affine: np.ndarray, world: tuple[float, float, float]) -> np.ndarray:
    """The unit pixel direction (i, j) of a world direction (RAS) in the slice, or zeros where
    the direction runs mostly through the plane."""
    axes = affine[:3, :2] / np.linalg.norm(affine[:3, :2], axis=0)
    d = axes.T @ np.asarray(world)
    n = np.linalg.norm(d)
    return d / n if n > 0.3 else np.zeros(2)


def thorax(
    classes: np.ndarray, labels: np.ndarray, affine: np.ndarray, rng: np.random.Generator, px: float
) -> np.ndarray:
    """Lungs, liver, descending aorta and spine around the heart, placed by the slice's world
    directions: a real long-axis cine has the heart between two dark lungs, the liver below the
    diaphragm and the descending aorta behind the left atrium, a bright ring a network must
    not take for a chamber. Without them the chest was random blobs, and a real cine's dark lung
    beside a small systolic heart was labelled as ventricles."""
    out = classes.copy()
    n = labels.shape[0]
    body = out != _AIR
    inner = ndimage.distance_transform_edt(body) * px > rng.uniform(8.0, 30.0)
    heart = ndimage.binary_dilation(labels > 0, iterations=max(1, round(rng.uniform(2, 12) / px)))
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    pix = np.stack([ii, jj], -1).astype(float)
    centre = np.argwhere(labels > 0).mean(0) if (labels > 0).any() else np.full(2, n / 2)
    feet = _unit_in_plane(affine, (0.0, 0.0, -1.0))
    free = inner & ~heart
    if feet.any() and rng.random() < 0.8:  # the diaphragm: a wavy line below the heart
        depth = (pix - centre) @ feet
        reach = depth[labels > 0].max() if (labels > 0).any() else 0.0
        lateral = (pix - centre) @ np.array([-feet[1], feet[0]])
        dome = reach + (rng.uniform(-10, 25) + 8 * smooth_field(rng, labels.shape, n / 8)) / px
        dome = dome + rng.uniform(0.0, 0.01) * px * lateral**2  # domed: lower at the sides
        out[free & (depth > dome)] = _LIVER
    if rng.random() < 0.85:
        wobble = smooth_field(rng, labels.shape, rng.uniform(3, 8)) > rng.uniform(-2.0, -0.8)
        lung = free & (out != _LIVER) & wobble
        vessels = smooth_field(rng, labels.shape, n / 6) > rng.uniform(1.8, 2.6)
        out[lung] = _LUNG
        out[lung & vessels] = _LUNG_VESSEL  # small bright islands in the lung
    back = _unit_in_plane(affine, (0.0, -1.0, 0.0))
    la = labels == WHS_LA
    if back.any() and la.sum() * px * px > 200 and rng.random() < 0.8:
        r_la = np.sqrt(la.sum() / np.pi)
        at = np.argwhere(la).mean(0) + back * (r_la + rng.uniform(4, 15) / px)
        at += rng.normal(0, 6 / px, 2)
        r_ao = rng.uniform(8, 14) / px
        dist = np.hypot(ii - at[0], jj - at[1])
        ring = (dist <= r_ao + rng.uniform(1, 3) / px) & ~heart
        out[ring] = _WALL
        out[(dist <= r_ao) & (labels == 0)] = _DAO
        vertebra = at + back * (r_ao + rng.uniform(15, 30) / px)
        spine = np.hypot(ii - vertebra[0], jj - vertebra[1]) <= rng.uniform(12, 22) / px
        out[spine & body & (labels == 0)] = _SPINE
    return out


def paint(classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random intensity per class (bSSFP-like half of the time), texture, blur, bias, noise."""
    n_cls = _N_CLS
    if rng.random() < 0.6:  # near bSSFP: bright blood and fat, dark muscle, lung and air
        mean = rng.uniform(0.0, 0.8, n_cls)
        blood = [*_BLOOD, _DAO, _LUNG_VESSEL]
        mean[blood] = rng.uniform(0.6, 1.0) * rng.uniform(0.85, 1.1, len(blood))
        mean[[WHS_MYO, _WALL]] = rng.uniform(0.08, 0.35) * rng.uniform(0.85, 1.15, 2)
        mean[_FAT] = rng.uniform(0.5, 1.0)
        mean[[_AIR, _LUNG]] = rng.uniform(0.0, 0.08, 2)
        mean[_LIVER] = rng.uniform(0.1, 0.45)
    else:  # any contrast (SynthSeg)
        mean = rng.uniform(0.0, 1.0, n_cls)
    std = rng.uniform(0.0, 0.06, n_cls)
    image = mean[classes] + std[classes] * rng.standard_normal(classes.shape)
    image *= 1.0 + 0.08 * smooth_field(rng, classes.shape, 2.0)  # flow and trabecular texture
    image = ndimage.gaussian_filter(image, rng.uniform(0.3, 1.2))
    image *= np.exp(
        0.3 * rng.uniform(0, 1) * smooth_field(rng, classes.shape, classes.shape[0] / 4)
    )
    sigma = rng.uniform(0.0, 0.05)
    image = np.hypot(
        image + sigma * rng.standard_normal(image.shape), sigma * rng.standard_normal(image.shape)
    )
    return np.clip(image, 0, None).astype(np.float32)


def synth_slices(
    anatomy: Anatomy, view: str, n: int, seed: int, name: str = "whs"
) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray, float]]:
    """``n`` random ``view`` slices: (id, image, seg4 labels, affine, pixel mm), X x Y each."""
    rng = np.random.default_rng([seed, 0x5EC])
    for k in range(n):
        whs, affine, px = cut(anatomy, view, rng)
        whs = _systole(whs, rng, px)
        image = paint(thorax(paint_classes(whs, rng, px), whs, affine, rng, px), rng)
        seg4 = _TO_SEG4[np.where(whs < 8, whs, 0)]
        yield f"{name}_{view}_{seed}_{k:04d}", image, seg4, affine, px
