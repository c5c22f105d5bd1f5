"""Material-point motion of the phantom's LV wall, its myocardial texture and its strain truth.

The anatomy (``anatomy.Heart``) gives, at every height z and frame, the cavity radius r_in(t)
and the outer radius r_out(t) of an axisymmetric wall. The material map in a short-axis plane
(fixed z in the heart frame, as a 2D tracker sees it) follows from them:

* a myocardial point keeps its angle (no twist) and its fraction of the wall *area* between
  endocardium and epicardium: rho(t)^2 = r_in(t)^2 + f (r_out(t)^2 - r_in(t)^2), with
  f = (rho_ED^2 - r_in_ED^2) / (r_out_ED^2 - r_in_ED^2). For a normal subject this leaves the
  label boundaries exactly where the anatomy puts them, so the volume truth is untouched.
* hypokinesis: in a region of 1, 2 or 4 contiguous basal/mid AHA segments the endocardium moves
  only k of its normal excursion, r_in_k = r_in_ED + k (r_in(t) - r_in_ED), with k = 1 - reduction
  (reduction 50-100 %, ramped to 1 over ``RAMP_DEG`` at the region's edges), and the wall area per
  angle stays that of the normal wall: r_out_k^2 = r_in_k^2 + r_out(t)^2 - r_in(t)^2. The labels
  are drawn from these radii, so the voxelised truth volumes (from the labels) stay exact; the
  ``*_analytic`` volumes of such subjects ignore the hypokinesis (marked in the truth table).
* texture: a fixed random field in heart-frame mm (correlation ~1.5 mm) sampled at each voxel's
  ED material coordinates, so the myocardium carries speckle-like detail that moves with it.

Strain truth (ukbb_cardiac's definition, computed here from the analytic map, not with the
pipeline's code): on the three slices at 25/50/75 % from base to apex among the slices whose
truth labels hold >= 10 pixels of cavity and of myocardium at ED, circumferential line elements
along the ED endo- and epicardium (720 angles) and radial elements from endo- to epicardium at
the same angle are mapped through the cycle; strain = (L_t - L_ED) / L_ED x 100; segment and
global curves are the ED-length-weighted mean of circumferential elements (equivalent to
elements of equal ED length, as contours sampled uniformly along their length give) and the
plain mean of radial ones; peak Ecc = curve minimum, peak Err = curve maximum. Septum at the RV
(heart-frame angle pi), anterior towards +v.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

N_THETA = 720
RAMP_DEG = 8.0
TEXTURE_AMPLITUDE = 0.22  # relative modulation of myocardial signal (SD)
_TEX_MM = 0.6  # texture grid spacing
_TEX_HALF = 160  # grid half-size in cells (+-96 mm)
MIN_PIXELS = 10  # a slice counts when cavity and myocardium each have this many pixels at ED
HYPOKINETIC_FRACTION = 0.1  # of pathology-free subjects (all low_ef subjects have one)


@dataclass(frozen=True)
class WallMotion:
    """Per-slice hypokinesis factor k(theta) (1 = normal) and the texture field."""

    factor: np.ndarray  # (n_slices, N_THETA), k at heart-frame angles THETA
    planned_segments: tuple[int, ...]
    reduction: float
    texture: np.ndarray  # (2H, 2H) heart-frame mm grid, SD 1

    @property
    def hypokinetic(self) -> bool:
        return bool(self.planned_segments)

    def k(self, slice_index: int, theta: np.ndarray) -> np.ndarray:
        """k at heart-frame angles ``theta`` (radians) on slice ``slice_index`` (periodic, linear)."""
        row = self.factor[slice_index]
        pos = np.mod(np.asarray(theta) + np.pi, 2 * np.pi) / (2 * np.pi) * N_THETA
        i0 = np.floor(pos).astype(np.intp) % N_THETA
        w = pos - np.floor(pos)
        return row[i0] * (1 - w) + row[(i0 + 1) % N_THETA] * w


THETA = -np.pi + 2 * np.pi * np.arange(N_THETA) / N_THETA


def septal_phi_deg(theta: np.ndarray) -> np.ndarray:
    """Degrees from the septum (heart angle pi), positive anterior (+v), in [-180, 180)."""
    return np.mod(np.degrees(np.pi - np.asarray(theta)) + 180.0, 360.0) - 180.0


def truth_segment(phi_deg: np.ndarray, level: int) -> np.ndarray:
    """AHA segment of angles from the septum (positive anterior) on a basal/mid/apical slice."""
    phi = np.mod(np.asarray(phi_deg) + 180.0, 360.0)  # degrees from phi = -180 (lateral)
    if level < 2:
        # from -180: inferolateral, inferior, inferoseptal, anteroseptal, anterior, anterolateral
        basal = np.array([5, 4, 3, 2, 1, 6])
        return basal[np.minimum((phi // 60).astype(int), 5)] + 6 * level
    # apical, 90-degree sectors centred on the septum: from -180: lateral(16, -180..-135),
    # inferior 15 (-135..-45), septal 14 (-45..45), anterior 13 (45..135), lateral 16
    apical = np.array([16, 15, 14, 13, 16])
    return apical[np.minimum(((phi + 45.0) // 90).astype(int), 4)]


def plan_motion(
    slice_z: np.ndarray,
    r_in_ed: np.ndarray,
    pixel_mm: float,
    pathology: str,
    rng: np.random.Generator,
    hypokinesis: bool | None = None,
) -> WallMotion:
    """Choose the subject's hypokinetic region (if any) and its texture.

    ``r_in_ed``: cavity radius at each slice centre at ED (mm). Levels follow the 25/50/75 %
    slice rule: every LV slice takes the level of the nearest selected slice.
    """
    tex = rng.standard_normal((2 * _TEX_HALF, 2 * _TEX_HALF)).astype(np.float32)
    tex = ndimage.gaussian_filter(tex, 1.5 / _TEX_MM)
    tex /= max(float(tex.std()), 1e-6)
    n = len(slice_z)
    factor = np.ones((n, N_THETA))
    if hypokinesis is None:
        hypokinesis = pathology == "low_ef" or rng.random() < HYPOKINETIC_FRACTION
    # draws happen regardless, so the texture does not depend on the choice
    reduction = float(rng.uniform(0.5, 1.0))
    levels_n = int(rng.choice([1, 2]))
    sectors_n = int(rng.choice([1, 2]))
    first_level = int(rng.integers(0, 3 - levels_n))
    first_sector = int(rng.integers(0, 6))
    if not hypokinesis:
        return WallMotion(factor, (), 0.0, tex)
    lv = np.nonzero(r_in_ed >= 2.0 * pixel_mm)[0]
    if lv.size < 3:
        return WallMotion(factor, (), 0.0, tex)
    picks = [lv[int(round((lv.size - 1) * q))] for q in (0.25, 0.5, 0.75)]
    slice_level = {int(z): int(np.argmin([abs(z - p) for p in picks])) for z in lv}
    # sector s covers phi in [-180 + 60 s, -120 + 60 s)
    phi = septal_phi_deg(THETA)
    lo = -180.0 + 60.0 * first_sector
    rel = np.mod(phi - lo, 360.0)  # degrees into the region
    width = 60.0 * sectors_n
    inside = np.clip(np.minimum(rel, width - rel) / RAMP_DEG, 0.0, 1.0) * (rel < width)
    k_row = 1.0 - reduction * inside
    levels = range(first_level, first_level + levels_n)
    for z, lev in slice_level.items():
        if lev in levels:
            factor[z] = k_row
    mid_angles = np.radians(180.0 - (lo + 30.0 + 60.0 * np.arange(sectors_n)))
    segs = sorted(int(truth_segment(septal_phi_deg(a), lev)) for lev in levels for a in mid_angles)
    return WallMotion(factor, tuple(segs), reduction, tex)


def moving_radii(r_in, r_out, r_in_ed, r_out_ed, k):
    """Endo- and epicardial radii of the wall with excursion factor k (broadcasting).

    Where the plane has no cavity at ED or at t (above the base), the normal radii are kept.
    """
    valid = (r_in > 0) & (r_in_ed > 0)
    r_in_k = np.where(valid, r_in_ed + k * (r_in - r_in_ed), r_in)
    area = r_out**2 - r_in**2
    r_out_k = np.where(valid, np.sqrt(np.maximum(r_in_k**2 + area, 0.0)), r_out)
    del r_out_ed  # the wall area at t does not depend on the ED outer radius
    return r_in_k, r_out_k


def texture_at(motion: WallMotion, rho, theta, r_in_k, r_out_k, r_in_ed, r_out_ed) -> np.ndarray:
    """The myocardial texture (SD 1) at voxels (rho, theta) at t: sampled at their ED position."""
    area_t = np.maximum(r_out_k**2 - r_in_k**2, 1e-6)
    frac = (rho**2 - r_in_k**2) / area_t
    rho0 = np.sqrt(np.maximum(r_in_ed**2 + frac * (r_out_ed**2 - r_in_ed**2), 0.0))
    coords = np.stack(
        [rho0 * np.cos(theta) / _TEX_MM + _TEX_HALF, rho0 * np.sin(theta) / _TEX_MM + _TEX_HALF]
    )
    return ndimage.map_coordinates(motion.texture, coords, order=1, mode="wrap")


def _three_slices(ed_labels: np.ndarray) -> list[int]:
    """The slices at 25/50/75 % from base (slice 0) to apex with cavity and myocardium at ED."""
    cav = (ed_labels == 1).sum(axis=(0, 1))
    myo = (ed_labels == 2).sum(axis=(0, 1))
    lv = np.nonzero((cav >= MIN_PIXELS) & (myo >= MIN_PIXELS))[0]
    if lv.size == 0:
        return []
    return [int(lv[int(round((lv.size - 1) * q))]) for q in (0.25, 0.5, 0.75)]


def strain_truth(heart, slice_z, motion: WallMotion, ed_labels: np.ndarray):
    """Truth strain curves in cycle order (frame 0 = ED).

    Returns (ecc, err, ecc_normal, slices): ecc/err shape (17, T) with rows AHA 1-16 and global;
    ``ecc_normal`` the circumferential curves the same heart would have without hypokinesis.
    """
    slices = _three_slices(ed_labels)
    n_t = len(heart.a)
    out = []
    for use_k in (True, False):
        circ = [[] for _ in range(17)]  # per segment: (weights, strain curves)
        rad = [[] for _ in range(17)]
        for level, z in enumerate(slices):
            r = heart.radii(np.array(slice_z[z], dtype=float))
            r_in, r_out = r["r_in"][:, None], r["r_out"][:, None]  # (T, 1)
            k = motion.factor[z][None, :] if use_k else np.ones((1, N_THETA))
            ri, ro = moving_radii(r_in, r_out, r_in[:1], r_out[:1], k)  # (T, N)
            seg_pts = truth_segment(septal_phi_deg(THETA + np.pi / N_THETA), level)
            for radius in (ri, ro):
                x, y = radius * np.cos(THETA), radius * np.sin(THETA)
                length = np.hypot(np.roll(x, -1, 1) - x, np.roll(y, -1, 1) - y)
                strain = (length / length[:1] - 1.0) * 100.0
                for s in range(1, 17):
                    m = seg_pts == s
                    if m.any():
                        circ[s - 1].append((length[0, m], strain[:, m]))
                circ[16].append((length[0], strain))
            thick = (ro - ri) / (ro[:1] - ri[:1])
            rstrain = (thick - 1.0) * 100.0
            seg_rad = truth_segment(septal_phi_deg(THETA), level)
            for s in range(1, 17):
                m = seg_rad == s
                if m.any():
                    rad[s - 1].append(rstrain[:, m])
            rad[16].append(rstrain)
        ecc = np.full((17, n_t), np.nan)
        err = np.full((17, n_t), np.nan)
        for s in range(17):
            if circ[s]:
                w = np.concatenate([c[0] for c in circ[s]])
                e = np.concatenate([c[1] for c in circ[s]], axis=1)
                ecc[s] = e @ w / w.sum()
            if rad[s]:
                err[s] = np.concatenate(rad[s], axis=1).mean(axis=1)
        out.append((ecc, err))
    (ecc, err), (ecc_normal, _) = out
    return ecc, err, ecc_normal, slices


def strain_truth_specs() -> dict:
    """Column specs of the strain truth in truth/idps.parquet."""
    from cardiopheno.io.tables import ColumnSpec

    specs = {}
    for kind, word, peak in (("Ecc", "circumferential", "minimum"), ("Err", "radial", "maximum")):
        for s in range(1, 17):
            specs[f"{kind}_AHA_{s}"] = ColumnSpec(
                "%", f"truth peak {word} strain ({peak} over the cycle), AHA segment {s}"
            )
        specs[f"{kind}_global"] = ColumnSpec("%", f"truth peak global {word} strain ({peak})")
    return specs


def strain_truth_columns(ecc, err, ecc_normal, motion: WallMotion, slices) -> dict:
    """Peak values per segment and global, the hypokinetic segments and the slices used."""
    t: dict = {}
    with np.errstate(invalid="ignore"):
        for s in range(16):
            t[f"Ecc_AHA_{s + 1}"] = (
                float(np.nanmin(ecc[s])) if np.isfinite(ecc[s]).any() else np.nan
            )
            t[f"Err_AHA_{s + 1}"] = (
                float(np.nanmax(err[s])) if np.isfinite(err[s]).any() else np.nan
            )
        t["Ecc_global"] = float(np.nanmin(ecc[16])) if np.isfinite(ecc[16]).any() else np.nan
        t["Err_global"] = float(np.nanmax(err[16])) if np.isfinite(err[16]).any() else np.nan
        normal_peak = np.nanmin(ecc_normal[:16], axis=1)
        peak = np.array([t[f"Ecc_AHA_{s + 1}"] for s in range(16)])
        reduced = 1.0 - peak / normal_peak
    # a segment is hypokinetic in truth when its peak Ecc is at least 30 % below normal
    hypo = [s + 1 for s in range(16) if np.isfinite(reduced[s]) and reduced[s] >= 0.3]
    t["hypokinetic_segments"] = ",".join(map(str, hypo))
    t["hypokinesis_planned"] = ",".join(map(str, motion.planned_segments))
    t["hypokinesis_reduction"] = float(motion.reduction)
    t["strain_slices"] = ",".join(map(str, slices))
    t["analytic_volumes_exact"] = not motion.hypokinetic
    return t
