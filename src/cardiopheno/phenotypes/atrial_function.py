"""Left and right atrial volumes and function from the long-axis 2- and 4-chamber cines.

ukbb_cardiac's area-length method (``evaluate_atrial_area_length``, Bai et al. 2018/2020), per
frame and atrium: the atrium's pixels are ordered along the heart's long axis (the short-axis
stack's slice normal when the subject has one, else the atrium's own principal axis); the major
axis joins the centroids of the bottom and top thirds; the length L is the atrium's extent along
that line through the top centroid, the area A its pixel area. Volumes:

* single plane: V = 8 / (3 pi) x A^2 / L (RA from the 4-chamber view);
* biplane LA: V = 8 / (3 pi) x A_2ch x A_4ch / ((L_2ch + L_4ch) / 2), as ukbb_cardiac.

Max and min over the cycle give LAV_max, LAV_min, LASV = max - min and LAEF = 100 LASV / max
(RA likewise). Unlike the anchor, a frame whose area or length cannot be measured (the atrium
missing from the frame, or cut off by the image edge) is left out and counted, instead of
entering as volume 0 (which made LAV_min 0 and LAEF 100 %), as is a frame whose length is shorter than the radius of
a disc of the atrium's area (the major axis missed a malformed atrium, and A^2 / L would explode);
with fewer than half the frames
left, the values are NaN with the reason in the subject's notes.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from cardiopheno.phenotypes.registry import PhenotypeSpec, SubjectContext, ViewData

FAMILY = "atrial_function"
VIEWS = ("la_2ch", "la_4ch")
LA_2CH, LA_4CH, RA_4CH = ("la_2ch", 1), ("la_4ch", 4), ("la_4ch", 5)
MIN_MEASURED_SHARE = 0.5

_DESC = {
    "V_max": ("mL", "maximal volume over the cycle"),
    "V_min": ("mL", "minimal volume over the cycle"),
    "SV": ("mL", "stroke volume (max - min)"),
    "EF": ("%", "ejection fraction, 100 x SV / max"),
}
OUTPUTS = [
    *(
        PhenotypeSpec(f"LA{k}", u, f"LA {d}: biplane area-length (2- and 4-chamber views)")
        for k, (u, d) in _DESC.items()
    ),
    *(
        PhenotypeSpec(f"RA{k}", u, f"RA {d}: single-plane area-length (4-chamber view)")
        for k, (u, d) in _DESC.items()
    ),
    PhenotypeSpec(
        "LA_frames_excluded", "", "frames left out of the LA curve (area or length not measurable)"
    ),
    PhenotypeSpec(
        "RA_frames_excluded", "", "frames left out of the RA curve (area or length not measurable)"
    ),
]


def long_axis_direction(ctx: SubjectContext) -> np.ndarray | None:
    """Unit world direction of the LV long axis: the short-axis stack's slice normal (as
    ukbb_cardiac), oriented to positive world z; None without a short-axis stack of 2+ slices."""
    if ctx.labels.shape[2] < 2 or ctx.affine is None:
        return None
    axis = np.asarray(ctx.affine, float)[:3, 2]
    norm = np.linalg.norm(axis)
    if norm == 0:
        return None
    axis = axis / norm
    return -axis if axis[2] < 0 else axis


def area_length(
    mask: np.ndarray, affine: np.ndarray, long_axis: np.ndarray | None
) -> tuple[float, float]:
    """Area (mm2) and length (mm) of one atrium in one frame (``mask`` X x Y); NaN, NaN when it
    cannot be measured (empty, or the major axis is undefined)."""
    if not mask.any():
        return math.nan, math.nan
    lab, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n > 1:  # largest component, as ukbb_cardiac
        sizes = ndimage.sum_labels(mask, lab, index=np.arange(1, n + 1))
        mask = lab == (1 + int(np.argmax(sizes)))
    affine = np.asarray(affine, float)
    px = np.nonzero(mask)
    ij = np.stack(px, axis=1).astype(float)
    world = ij @ affine[:3, :2].T + affine[:3, 3]
    if long_axis is None:  # the atrium's own principal axis
        centred = world - world.mean(axis=0)
        long_axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    order = np.argsort(world @ long_axis, kind="stable")
    k = len(order)
    if k < 3:
        return math.nan, math.nan
    top = ij[order[int(2 * k / 3) :]].mean(axis=0)
    bottom = ij[order[: int(k / 3)]].mean(axis=0)
    major = top - bottom
    if not np.linalg.norm(major) > 0:
        return math.nan, math.nan
    major /= np.linalg.norm(major)
    # Sample the line through the top centroid every 0.1 pixel; the length is the extent of
    # the run of atrium pixels that contains the centroid's nearest inside sample.
    reach = int(10 * np.hypot(*mask.shape)) + 1  # the whole image, in tenths of a pixel
    steps = np.arange(-reach, reach + 1) * 0.1
    pts = top[None, :] + steps[:, None] * major[None, :]
    idx = np.rint(pts).astype(int)
    ok = (idx >= 0).all(axis=1) & (idx[:, 0] < mask.shape[0]) & (idx[:, 1] < mask.shape[1])
    inside = np.zeros(len(steps), bool)
    inside[ok] = mask[idx[ok, 0], idx[ok, 1]]
    if not inside.any():
        return math.nan, math.nan
    runs, n_runs = ndimage.label(inside)
    centre = int(np.argmin(np.where(inside, np.abs(steps), np.inf)))
    sel = np.flatnonzero(runs == runs[centre])
    ends = ij_to_world(pts[[sel[0], sel[-1]]], affine)
    length = float(np.linalg.norm(ends[1] - ends[0]))
    area = float(mask.sum()) * pixel_area_mm2(affine)
    if length < np.sqrt(area / np.pi):
        # shorter than the radius of a disc of the same area: the major axis missed the atrium
        # (a malformed segmentation), and A^2 / L would explode; not measurable
        return math.nan, math.nan
    return area, length


def ij_to_world(ij: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return ij @ affine[:3, :2].T + affine[:3, 3]


def pixel_area_mm2(affine: np.ndarray) -> float:
    return float(np.linalg.norm(np.cross(affine[:3, 0], affine[:3, 1])))


def curves(view: ViewData, label: int, long_axis) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame area (mm2) and length (mm) of ``label`` in a single-slice view."""
    n = view.labels.shape[3]
    out = np.full((2, n), np.nan)
    for t in range(n):
        out[:, t] = area_length(view.labels[:, :, 0, t] == label, view.affine, long_axis)
    return out[0], out[1]


def single_plane(area, length):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 8.0 / (3.0 * np.pi) * area * area / length / 1000.0


def biplane(a2, l2, a4, l4):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 8.0 / (3.0 * np.pi) * a2 * a4 / (0.5 * (l2 + l4)) / 1000.0


def summarise(prefix: str, volume: np.ndarray, ctx: SubjectContext) -> dict[str, float]:
    excluded = int(np.count_nonzero(~np.isfinite(volume)))
    out = {f"{prefix}_frames_excluded": float(excluded)}
    if excluded:
        ctx.note(f"{prefix}: {excluded} of {len(volume)} frames not measurable, left out")
    if len(volume) - excluded < max(2, MIN_MEASURED_SHARE * len(volume)):
        ctx.note(f"{prefix}: too few measurable frames for volumes")
        return out
    vmax, vmin = float(np.nanmax(volume)), float(np.nanmin(volume))
    out.update(
        {
            f"{prefix}V_max": vmax,
            f"{prefix}V_min": vmin,
            f"{prefix}SV": vmax - vmin,
            f"{prefix}EF": 100.0 * (vmax - vmin) / vmax if vmax > 0 else math.nan,
        }
    )
    return out


def atrial_curves(ctx: SubjectContext) -> dict[str, np.ndarray]:
    """Per-frame atrial areas, lengths and volumes of the views the subject has (also used by
    figures and the validation benchmark)."""
    axis = long_axis_direction(ctx)
    out: dict[str, np.ndarray] = {}
    for (view, label), tag in ((LA_2CH, "LA_2ch"), (LA_4CH, "LA_4ch"), (RA_4CH, "RA_4ch")):
        data = ctx.view(view)
        if data is None:
            continue
        out[f"{tag}_area_mm2"], out[f"{tag}_length_mm"] = curves(data, label, axis)
        out[f"{tag}_volume_ml"] = single_plane(out[f"{tag}_area_mm2"], out[f"{tag}_length_mm"])
    if "LA_2ch_area_mm2" in out and "LA_4ch_area_mm2" in out:
        if len(out["LA_2ch_area_mm2"]) == len(out["LA_4ch_area_mm2"]):
            out["LA_biplane_volume_ml"] = biplane(
                out["LA_2ch_area_mm2"],
                out["LA_2ch_length_mm"],
                out["LA_4ch_area_mm2"],
                out["LA_4ch_length_mm"],
            )
        else:
            ctx.note("LA: 2- and 4-chamber cines have different frame counts; no biplane volume")
    return out


def compute(ctx: SubjectContext) -> dict[str, float]:
    c = atrial_curves(ctx)
    for name in ("LA_biplane_volume_ml", "RA_4ch_volume_ml"):
        if name in c:
            ctx.curves[name] = c[name]
    values: dict[str, float] = {}
    if "LA_biplane_volume_ml" in c:
        values.update(summarise("LA", c["LA_biplane_volume_ml"], ctx))
    else:
        missing = [v for v in VIEWS if ctx.view(v) is None]
        ctx.note(f"LA: no {' or '.join(missing) or 'biplane'} view, LA volumes not computed")
    if "RA_4ch_volume_ml" in c:
        values.update(summarise("RA", c["RA_4ch_volume_ml"], ctx))
    else:
        ctx.note("RA: no la_4ch view, RA volumes not computed")
    return values
