"""Left and right atrial volumes and function from the long-axis 2- and 4-chamber cines.

ukbb_cardiac's area-length method (Bai et al. 2018/2020, long_axis/eval_atrial_volume.py), per
frame and atrium: the area A and the length L of the atrium in the view
(:mod:`cardiopheno.phenotypes.area_length`: by default exactly as the anchor measures them, on its
largest component, along its major axis through the top and bottom thirds ordered along the
short-axis stack's normal; config ``phenotypes.atrial_function.method`` picks another way).
Volumes:

* single plane: V = 8 / (3 pi) x A^2 / L (RA from the 4-chamber view);
* biplane LA: V = 8 / (3 pi) x A_2ch x A_4ch / ((L_2ch + L_4ch) / 2), as ukbb_cardiac.

Max and min over the cycle give LAV_max, LAV_min, LASV = max - min and LAEF = 100 LASV / max
(RA likewise). Unlike the anchor, a frame whose area or length cannot be measured (the atrium
missing from the frame, the line missing it, or a length shorter than the radius of a disc of the
atrium's area, where A^2 / L would explode) is left out and counted, instead of entering as
volume 0 (which made LAV_min 0 and LAEF 100 %); with fewer than half the frames left, the values
are NaN with the reason in the subject's notes.
"""

from __future__ import annotations

import math

import numpy as np

from cardiopheno.phenotypes.area_length import DEFAULT_METHOD, METHODS, area_length
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


def curves(
    view: ViewData, label: int, long_axis, method: str = DEFAULT_METHOD
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame area (mm2) and length (mm) of ``label`` in a single-slice view."""
    n = view.labels.shape[3]
    out = np.full((2, n), np.nan)
    # the anchor's pixel area is the header's pixel size (pixdim), which ``spacing`` holds
    pixel_area = view.spacing[0] * view.spacing[1] if method == "anchor" else None
    for t in range(n):
        mask = view.labels[:, :, 0, t] == label
        out[:, t] = area_length(mask, view.affine, long_axis, method, pixel_area)
    return out[0], out[1]


def method_of(ctx: SubjectContext) -> str:
    """The length method of config ``phenotypes.atrial_function.method`` (default ``anchor``)."""
    method = str(ctx.options.get(FAMILY, {}).get("method", DEFAULT_METHOD))
    if method not in METHODS:
        raise ValueError(
            f"phenotypes.atrial_function.method must be one of {', '.join(METHODS)}, got {method!r}"
        )
    return method


def single_plane(area, length):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 8.0 / (3.0 * np.pi) * area * area / length / 1000.0


def biplane(a2, l2, a4, l4):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 8.0 / (3.0 * np.pi) * a2 * a4 / (0.5 * (l2 + l4)) / 1000.0


def volume_names(prefix: str) -> list[str]:
    """The volume outputs of one atrium ("LA" or "RA")."""
    return [f"{prefix}{k}" for k in _DESC]


def summarise(prefix: str, volume: np.ndarray, ctx: SubjectContext) -> dict[str, float]:
    excluded = int(np.count_nonzero(~np.isfinite(volume)))
    out = {f"{prefix}_frames_excluded": float(excluded)}
    if excluded:
        ctx.note(f"{prefix}: {excluded} of {len(volume)} frames not measurable, left out")
    if len(volume) - excluded < max(2, MIN_MEASURED_SHARE * len(volume)):
        why = f"too few measurable frames ({len(volume) - excluded} of {len(volume)})"
        ctx.explain(volume_names(prefix), why + absent_labels(ctx, prefix))
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


def absent_labels(ctx: SubjectContext, prefix: str) -> str:
    """ "; label L absent from every frame of VIEW (labels there: ...)" for the atrium's views
    whose label map never holds its label (a file in another convention, say), else ""."""
    parts = []
    for view, label in (LA_2CH, LA_4CH) if prefix == "LA" else (RA_4CH,):
        data = ctx.view(view)
        if data is not None and not np.any(data.labels == label):
            present = ", ".join(str(v) for v in np.unique(data.labels) if v) or "none"
            parts.append(f"; label {label} absent from every frame of {view} (labels: {present})")
    return "".join(parts)


def atrial_curves(ctx: SubjectContext) -> dict[str, np.ndarray]:
    """Per-frame atrial areas, lengths and volumes of the views the subject has (also used by
    figures and the validation benchmark)."""
    axis, method = long_axis_direction(ctx), method_of(ctx)
    out: dict[str, np.ndarray] = {}
    for (view, label), tag in ((LA_2CH, "LA_2ch"), (LA_4CH, "LA_4ch"), (RA_4CH, "RA_4ch")):
        data = ctx.view(view)
        if data is None:
            continue
        out[f"{tag}_area_mm2"], out[f"{tag}_length_mm"] = curves(data, label, axis, method)
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
            ctx.explain(
                volume_names("LA"), "the 2- and 4-chamber cines have different frame counts"
            )
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
        if missing:
            ctx.explain(
                [*volume_names("LA"), "LA_frames_excluded"], f"no {' or '.join(missing)} view"
            )
    if "RA_4ch_volume_ml" in c:
        values.update(summarise("RA", c["RA_4ch_volume_ml"], ctx))
    else:
        ctx.explain([*volume_names("RA"), "RA_frames_excluded"], "no la_4ch view")
    return values
