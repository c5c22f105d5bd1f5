"""LV longitudinal strain (Ell) from the 4-chamber long-axis cine, ukbb_cardiac's definition.

ukbb_cardiac (``extract_la_myocardial_contour``, ``remove_mitral_valve_points``,
``evaluate_la_strain_by_length``): on the ED frame of ``seg4_la_4ch`` (1 LV cavity, 2 LV
myocardium, 3 RV, 4 LA, 5 RA) the LV endocardial and epicardial contours are extracted, the
points on the mitral valve plane (near the LA) are removed, so each contour runs from one side
of the annulus round the apex to the other; longitudinal line elements join consecutive points;
they are tracked through the cycle and Ell = (L_t - L_ED) / L_ED x 100, averaged per segment and
over all elements; peak = minimum over the cycle.

Segments (ours, by arc length along each open contour, the septal side being the one nearer the
RV): 1 basal septal, 2 mid septal, 3 apical septal, 4 apical lateral, 5 mid lateral, 6 basal
lateral (each contour split in sixths of its length).

The family reads the subject's ``la_4ch`` view (its segmentation from the shipped 4-chamber
model or a provided ``seg4_la_4ch``, and the cine, which the batch stage loads because of
``NEEDS_IMAGE``); a subject without the view gets NaN with the reason "no la_4ch view".
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY, definitions
from cardiopheno.motion import MotionSettings, TrackingError, track_slices, warp_points
from cardiopheno.phenotypes.registry import PhenotypeSpec, SubjectContext
from cardiopheno.phenotypes.strain import closed_contour, largest_component

FAMILY = "longitudinal_strain"
VIEW = "la_4ch"
NEEDS_IMAGE = True
LA = 4  # seg4_la_4ch label of the left atrium
MITRAL_DILATION_PX = 3
# the tracking as validated for Ell (before the short-axis defaults became multi-resolution
# and shorter in issue 14's speed work; the faster settings are not validated on this view)
LA_SETTINGS = MotionSettings(
    texture_weight=4.0,
    wall_erosion=0,
    iterations=(50, 50, 40),
    downsample=(1, 1, 1),
    step_follows_grid=False,
    sliding=0.0,  # a short-axis ring's regulariser: the 4-chamber wall is no ring
)
SEGMENT_NAMES = ["basal septal", "mid septal", "apical septal", "apical lateral", "mid lateral",
                 "basal lateral"]  # fmt: skip
OUTPUTS = [
    *(
        PhenotypeSpec(f"Ell_{k}", "%", f"peak longitudinal strain, 4-chamber segment {k} ({n})")
        for k, n in enumerate(SEGMENT_NAMES, start=1)
    ),
    PhenotypeSpec("Ell_global", "%", "peak global longitudinal strain (minimum over the cycle)"),
]


def _open_contour(points: np.ndarray, mitral: np.ndarray) -> np.ndarray:
    """The longest run of contour points off the mitral plane, in order along the contour."""
    idx = np.clip(np.rint(points).astype(int), 0, np.array(mitral.shape) - 1)
    off = ~mitral[idx[:, 0], idx[:, 1]]
    if off.all() or not off.any():
        return points if off.all() else points[:0]
    start = int(np.argmax(~off))  # a mitral point: runs are read from here, cyclically
    rolled, keep = np.roll(points, -start, 0), np.roll(off, -start)
    runs, cur = [], []
    for p, k in zip(rolled, keep, strict=True):
        if k:
            cur.append(p)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return np.array(max(runs, key=len))


def longitudinal_strain(
    image: np.ndarray,
    labels: np.ndarray,
    spacing: tuple[float, float],
    ed_frame: int = 0,
    settings: MotionSettings | None = None,
) -> tuple[dict[str, float], np.ndarray, str]:
    """Ell of a single-slice long-axis cine (X x Y x T or X x Y x 1 x T) and its labels.

    Returns (values, global curve per frame, note); values are NaN and the note says why when
    the input cannot give strain.
    """
    out = {s.name: math.nan for s in OUTPUTS}
    if image.ndim == 3:
        image, labels = image[:, :, None], labels[:, :, None]
    if image.shape[-1] < 2:
        return out, np.full(image.shape[-1], math.nan), "a cine of 1 frame cannot show motion"
    seg = labels[:, :, 0, ed_frame]
    cav = largest_component(seg == LV_CAVITY)
    if cav.sum() < 10 or (seg == LV_MYOCARDIUM).sum() < 10:
        return out, np.full(image.shape[-1], math.nan), "no LV cavity and myocardium at ED"
    epi = ndimage.binary_fill_holes(largest_component(np.isin(seg, (LV_CAVITY, LV_MYOCARDIUM))))
    mitral = ndimage.binary_dilation(seg == LA, iterations=MITRAL_DILATION_PX)
    contours = [_open_contour(closed_contour(m), mitral) for m in (cav, epi)]
    if min(len(c) for c in contours) < 12:
        return out, np.full(image.shape[-1], math.nan), "LV contours too short off the mitral plane"
    rv = np.argwhere(seg == RV_CAVITY)
    try:
        # long-axis default: with the high-pass texture channel (on the U-band test the short-axis
        # default, without it, reads Ell 2 points low; not yet tuned on real long-axis cines)
        motion = track_slices(image, labels, [0], ed_frame, spacing, settings or LA_SETTINGS)
    except TrackingError as exc:
        return out, np.full(image.shape[-1], math.nan), str(exc)
    scale = np.asarray(spacing, float)
    n_t = image.shape[-1]
    sums, counts = np.zeros((7, n_t)), np.zeros(7)
    for pts in contours:
        if len(rv) and np.linalg.norm(pts[-1] - rv.mean(0)) < np.linalg.norm(pts[0] - rv.mean(0)):
            pts = pts[::-1]  # start on the septal side (nearer the RV)
        moved = warp_points(motion, 0, pts)
        length = np.linalg.norm(np.diff(moved, axis=1) * scale, axis=2)  # (T, N-1)
        strain = (length / np.maximum(length[ed_frame], 1e-6) - 1.0) * 100.0
        arc = np.cumsum(length[ed_frame]) - 0.5 * length[ed_frame]
        seg_id = 1 + np.minimum((6 * arc / arc[-1]).astype(int), 5)
        for k in range(1, 7):
            sums[k] += strain[:, seg_id == k].sum(1)
            counts[k] += (seg_id == k).sum()
        sums[0] += strain.sum(1)
        counts[0] += strain.shape[1]
    curves = sums / np.maximum(counts, 1)[:, None]
    for k in range(1, 7):
        out[f"Ell_{k}"] = float(curves[k].min())
    out["Ell_global"] = float(curves[0].min())
    return out, curves[0], ""


def compute(ctx: SubjectContext) -> dict[str, float]:
    view = ctx.view(VIEW)
    if view.image is None:
        ctx.explain([s.name for s in OUTPUTS], "no la_4ch cine (strain needs the image)")
        return {s.name: math.nan for s in OUTPUTS}
    lv = (view.labels == LV_CAVITY).sum(axis=(0, 1, 2))
    ed = definitions.ed_frame(lv, ctx.ed_frame_mode)
    values, curve, note = longitudinal_strain(view.image, view.labels, view.spacing[:2], ed)
    if note:
        ctx.explain([s.name for s in OUTPUTS], note)
    else:
        ctx.curves["Ell_global"] = curve
    return values
