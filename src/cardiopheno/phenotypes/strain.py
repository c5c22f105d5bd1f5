"""LV circumferential and radial strain (Ecc, Err) in the 16 AHA segments and globally.

ukbb_cardiac's definitions (``cine_2d_sa_motion_and_strain_analysis``, ``evaluate_strain_by_length``):

- Slices: those with >= 10 pixels of LV cavity and of myocardium at ED, ordered base to apex; by
  default the three at 25, 50 and 75 % (basal, mid, apical: the most basal slices leave the plane
  and the most apical ones blur), or with ``slices: all`` every slice in thirds (ceil(n/3) basal).
- Contours: the ED endocardium (largest cavity component) and epicardium (largest component of
  cavity + myocardium), smoothed and resampled every ``CONTOUR_STEP_PX`` along their length.
  Circumferential line elements join consecutive points of each contour; radial ones join 36
  endocardial points evenly spaced along it to the epicardial point, among the 10 nearest, best
  aligned with the direction from the cavity centre.
- Motion: :func:`cardiopheno.motion.track_slices` (ED to every frame, batched in torch) moves the
  points; strain of an element = (L_t - L_ED) / L_ED x 100, averaged per AHA segment (the point's
  angle about the cavity centroid from the septum, as ``wall_thickness``) and over all elements
  (global) per frame. Peak Ecc = minimum of a curve over the cycle, peak Err = maximum.
- Tracking QC (outputs ``qc_strain_*``, excluded from analyses by their prefix): the Dice of the
  ED myocardium with the ES segmentation's myocardium pulled back to ED through the ES field,
  and the mean distance (mm) of the warped ED contours from the ES segmentation's boundaries.

Per-frame global curves go to ``ctx.curves`` (``Ecc_global``, ``Err_global``; written per batch
to results/phenotypes/curves/ by ``phenotypes.batch``). A subject without image, with one frame or without myocardium on the
chosen slices gets NaN and a note saying why.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage import measure

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM
from cardiopheno.motion import MotionSettings, TrackingError, track_slices, warp_points
from cardiopheno.phenotypes.registry import PhenotypeSpec, SubjectContext
from cardiopheno.phenotypes.wall_thickness import (
    AHA_NAMES,
    aha_segments,
    lv_slices_base_to_apex,
    orient_septa,
    slice_septum,
)

log = logging.getLogger(__name__)

FAMILY = "strain"
REQUIRES = ()
NEEDS_IMAGE = True  # the batch stage loads the cine for it
MIN_PIXELS = 10  # ukbb_cardiac's pixel_thres for a slice to count
CONTOUR_STEP_PX = 0.5
N_RADIAL = 36
SLICE_MODES = ("three", "all")
OUTPUTS = [
    *(
        PhenotypeSpec(f"Ecc_AHA_{k}", "%", f"peak circumferential strain, AHA segment {k} ({name})")
        for k, name in enumerate(AHA_NAMES, start=1)
    ),
    PhenotypeSpec("Ecc_global", "%", "peak global circumferential strain (minimum over the cycle)"),
    *(
        PhenotypeSpec(f"Err_AHA_{k}", "%", f"peak radial strain, AHA segment {k} ({name})")
        for k, name in enumerate(AHA_NAMES, start=1)
    ),
    PhenotypeSpec("Err_global", "%", "peak global radial strain (maximum over the cycle)"),
    PhenotypeSpec(
        "qc_strain_es_dice", "", "Dice of the ED myocardium with the ES myocardium tracked to ED"
    ),
    PhenotypeSpec(
        "qc_strain_es_contour_mm",
        "mm",
        "mean distance of the tracked ED contours from the ES segmentation's boundaries",
    ),
]


def settings_from(options: dict) -> tuple[str, MotionSettings]:
    """(slice mode, registration settings) from config ``phenotypes.strain``."""
    mode = str(options.get("slices", "three"))
    if mode not in SLICE_MODES:
        raise ValueError(f"phenotypes.strain.slices must be one of {SLICE_MODES}, got {mode!r}")
    known = set(MotionSettings.__dataclass_fields__)
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in options.items() if k in known}
    return mode, MotionSettings(**kw)


def choose_slices(ordered: list[int], mode: str) -> list[tuple[int, int]]:
    """(slice, level 0 basal / 1 mid / 2 apical) as ukbb_cardiac's ``determine_aha_part``."""
    n = len(ordered)
    if n == 0:
        return []
    if mode == "three":
        return [(ordered[int(round((n - 1) * q))], lev) for lev, q in enumerate((0.25, 0.5, 0.75))]
    i1, i2 = math.ceil(n / 3.0), math.ceil(2 * n / 3.0)
    return [(z, 0 if i < i1 else 1 if i < i2 else 2) for i, z in enumerate(ordered)]


def largest_component(mask: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = ndimage.sum_labels(mask, lab, index=np.arange(1, n + 1))
    return lab == (1 + int(np.argmax(sizes)))


def closed_contour(mask: np.ndarray, step: float = CONTOUR_STEP_PX) -> np.ndarray:
    """The outer boundary of a 2D mask as (N, 2) pixel points, smoothed a little and resampled
    every ``step`` pixels along its length (the contour is closed: the last point joins the
    first)."""
    padded = np.pad(mask.astype(np.float32), 1)
    contours = measure.find_contours(padded, 0.5)
    c = max(contours, key=len)[:-1] - 1.0  # drop the repeated end point, undo the padding
    # smooth the marching-squares corners (periodic), as ukbb_cardiac's spline approximation
    c = ndimage.gaussian_filter1d(c, sigma=2.0, axis=0, mode="wrap")
    seg = np.hypot(*np.diff(np.vstack([c, c[:1]]), axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(int(arc[-1] / step), 8)
    s = np.linspace(0.0, arc[-1], n, endpoint=False)
    closed = np.vstack([c, c[:1]])
    return np.stack([np.interp(s, arc, closed[:, 0]), np.interp(s, arc, closed[:, 1])], axis=1)


def strain_lines(
    endo: np.ndarray, epi: np.ndarray, centre: np.ndarray, n_radial: int = N_RADIAL
) -> tuple[np.ndarray, np.ndarray]:
    """Line elements over the points [endo; epi]: (pairs (L, 2) of point indices, direction
    (L,) 1 radial / 2 circumferential), ukbb_cardiac's layout."""
    ne, npi = len(endo), len(epi)
    circ = [np.stack([np.arange(ne), (np.arange(ne) + 1) % ne], 1)]
    circ.append(ne + np.stack([np.arange(npi), (np.arange(npi) + 1) % npi], 1))
    every = max(int(round(ne / float(n_radial))), 1)
    starts = np.arange(0, ne, every)
    _, near = cKDTree(epi).query(endo[starts], k=min(10, npi))
    near = np.atleast_2d(near)
    d_rad = endo[starts] - centre
    d_rad /= np.linalg.norm(d_rad, axis=1, keepdims=True) + 1e-9
    d_epi = epi[near] - centre
    d_epi /= np.linalg.norm(d_epi, axis=2, keepdims=True) + 1e-9
    best = near[np.arange(len(starts)), np.argmax((d_epi * d_rad[:, None]).sum(-1), axis=1)]
    rad = np.stack([starts, ne + best], 1)
    pairs = np.vstack([*circ, rad])
    direction = np.concatenate([np.full(ne + npi, 2), np.ones(len(starts), int)])
    return pairs, direction


def _peak(curves: np.ndarray, kind: str) -> np.ndarray:
    ok = np.isfinite(curves).any(axis=1)
    out = np.full(curves.shape[0], np.nan)
    if ok.any():
        fn = np.nanmin if kind == "min" else np.nanmax
        out[ok] = fn(curves[ok], axis=1)
    return out


def compute(ctx: SubjectContext) -> dict[str, float]:
    """Strain of one subject; any failure of tracking or contouring leaves NaN and a note, so the
    subject's other phenotypes (volumes) stay."""
    try:
        return _compute(ctx)
    except Exception as exc:  # one subject's odd anatomy must not cost it its volumes
        log.exception("%s: strain failed", ctx.eid)
        ctx.note(f"strain: failed ({type(exc).__name__}: {exc})")
        ctx.curves.pop("Ecc_global", None)
        ctx.curves.pop("Err_global", None)
        return {s.name: math.nan for s in OUTPUTS}


def _compute(ctx: SubjectContext) -> dict[str, float]:
    out = {s.name: math.nan for s in OUTPUTS}

    def skip(why: str) -> dict[str, float]:
        ctx.note(f"strain: {why}")
        return out

    if ctx.image is None:
        return skip("no image (strain needs the cine, not just its segmentation)")
    if ctx.n_frames < 2:
        return skip(f"a cine of {ctx.n_frames} frame cannot show motion")
    mode, settings = settings_from(dict(ctx.options.get(FAMILY, {})))
    spacing = (float(ctx.spacing[0]), float(ctx.spacing[1]))
    ed, es = ctx.ed_frame, ctx.es_frame
    seg_ed = ctx.labels[..., ed]
    picks = choose_slices(lv_slices_base_to_apex(seg_ed, MIN_PIXELS), mode)
    if len(picks) < 1:
        return skip("no slice with LV cavity and myocardium at ED")
    geometry = _slice_geometry(seg_ed, picks)
    slices = [g[0] for g in geometry]
    try:
        motion = track_slices(ctx.image, ctx.labels, slices, ed, spacing, settings)
    except TrackingError as exc:
        return skip(str(exc))
    oriented = orient_septa(
        [slice_septum(seg_ed[..., z], spacing) for z in slices], ctx.affine, spacing
    )
    if oriented is None:
        ctx.note("strain: no RV contact, AHA segments undefined (global values only)")
    frames = (ed, es)
    sums, counts, dice, dists = _track_elements(ctx, motion, geometry, oriented, spacing, frames)
    curves = _peaks_into(out, sums, counts, oriented)
    if dice[1] > 0:
        out["qc_strain_es_dice"] = float(2.0 * dice[0] / dice[1])
        out["qc_strain_es_contour_mm"] = float(np.mean(np.concatenate(dists)))
    ctx.curves["Ecc_global"] = curves["Ecc"]
    ctx.curves["Err_global"] = curves["Err"]
    return out


def _slice_geometry(seg_ed: np.ndarray, picks: list[tuple[int, int]]) -> list[tuple]:
    """(slice, AHA level, ED endocardial contour, epicardial contour, cavity centre) per
    chosen slice."""
    geometry = []
    for z, level in picks:
        endo_mask = largest_component(seg_ed[..., z] == LV_CAVITY)
        epi_mask = ndimage.binary_fill_holes(
            largest_component(np.isin(seg_ed[..., z], (LV_CAVITY, LV_MYOCARDIUM)))
        )
        endo, epi = closed_contour(endo_mask), closed_contour(epi_mask)
        centre = np.array([np.mean(a) for a in np.nonzero(endo_mask)])
        geometry.append((z, level, endo, epi, centre))
    return geometry


def _track_elements(ctx: SubjectContext, motion, geometry, oriented, spacing, frames):
    """Strain of every line element of every slice through the cycle, summed per direction (1
    radial, 2 circumferential) and AHA segment (0 when undefined): (sums {d: (17, T)}, counts
    {d: (17,)}, ES Dice (|A & B|, |A| + |B|) summed over slices, ES contour distances);
    ``frames``: (ED, ES)."""
    (ed, es), n_t = frames, ctx.n_frames
    seg_ed = ctx.labels[..., ed]
    sums = {d: np.zeros((17, n_t)) for d in (1, 2)}
    counts = {d: np.zeros(17) for d in (1, 2)}
    scale = np.array(spacing)
    dice_num = dice_den = 0.0
    dists = []
    for i, (z, level, endo, epi, centre) in enumerate(geometry):
        pts = np.vstack([endo, epi])
        pairs, direction = strain_lines(endo, epi, centre)
        moved = warp_points(motion, i, pts)  # (T, N, 2)
        length = np.linalg.norm((moved[:, pairs[:, 1]] - moved[:, pairs[:, 0]]) * scale, axis=2)
        strain = (length / np.maximum(length[ed], 1e-6) - 1.0) * 100.0  # (T, L)
        seg_id = np.zeros(len(pairs), int)
        if oriented is not None:
            seg_id = _element_segments(pts, pairs, direction, centre, scale, oriented, i, level)
        for d in (1, 2):
            m = direction == d
            sums[d] += np.stack(
                [np.bincount(seg_id[m], weights=strain[t, m], minlength=17) for t in range(n_t)], 1
            )
            counts[d] += np.bincount(seg_id[m], minlength=17)
        # tracking QC at ES
        es_lab = ctx.labels[..., z, es]
        if (es_lab == LV_MYOCARDIUM).any():
            dice_i, dist_i = _es_agreement(
                motion, i, es, seg_ed[..., z], es_lab, moved[es], spacing
            )
            dice_num += dice_i[0]
            dice_den += dice_i[1]
            dists.append(dist_i)
    return sums, counts, (dice_num, dice_den), dists


def _element_segments(pts, pairs, direction, centre, scale, oriented, index, level):
    """AHA segment (1-16) of each line element: circumferential ones at their midpoint, radial
    ones at their endocardial end, by angle about the cavity centre from the septum."""
    mid = 0.5 * (pts[pairs[:, 0]] + pts[pairs[:, 1]])
    mid = np.where((direction == 1)[:, None], pts[pairs[:, 0]], mid)
    rel = (mid - centre) * scale
    return aha_segments(np.arctan2(rel[:, 1], rel[:, 0]), oriented[0][index], oriented[1], level)


def _peaks_into(out: dict[str, float], sums, counts, oriented) -> dict[str, np.ndarray]:
    """Write the peak segmental (when the segments are defined) and global Ecc and Err into
    ``out``; return the global curves by name."""
    curves = {}
    for d, name in ((2, "Ecc"), (1, "Err")):
        c = counts[d]
        with np.errstate(invalid="ignore", divide="ignore"):
            seg_curve = sums[d][1:] / c[1:, None]
        global_curve = sums[d].sum(0) / max(c.sum(), 1)
        curves[name] = global_curve
        peaks = _peak(seg_curve, "min" if name == "Ecc" else "max")
        if oriented is not None:
            for k in range(16):
                out[f"{name}_AHA_{k + 1}"] = float(peaks[k])
        out[f"{name}_global"] = float(global_curve.min() if name == "Ecc" else global_curve.max())
    return curves


def _es_agreement(motion, index, es, ed_lab, es_lab, moved_pts, spacing):
    """((|A & B|, |A| + |B|) of the ED myocardium A and the ES myocardium pulled back to ED
    through the ES field, B; distances (mm) of the tracked ED contour points from the ES
    segmentation's endo- and epicardial boundaries)."""
    x0, y0 = motion.origin
    u = motion.displacement[index, es]
    h, w = u.shape[1:]
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    crop = es_lab[x0 : x0 + h, y0 : y0 + w]
    back = ndimage.map_coordinates(crop, [ii + u[0], jj + u[1]], order=0, mode="nearest")
    a = ed_lab[x0 : x0 + h, y0 : y0 + w] == LV_MYOCARDIUM
    b = back == LV_MYOCARDIUM
    cav = es_lab == LV_CAVITY
    epi = np.isin(es_lab, (LV_CAVITY, LV_MYOCARDIUM))
    edges = (cav ^ ndimage.binary_erosion(cav)) | (epi ^ ndimage.binary_erosion(epi))
    dist = ndimage.distance_transform_edt(~edges, sampling=spacing)
    d = ndimage.map_coordinates(dist, moved_pts.T, order=1, mode="nearest")
    return (float((a & b).sum()), float(a.sum() + b.sum())), d
