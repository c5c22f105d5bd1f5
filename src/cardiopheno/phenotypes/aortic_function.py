"""Aortic function from the transverse aortic cine (view ``ao``): areas and distensibility.

Definitions as ukbb_cardiac's aortic/eval_aortic_area.py: per vessel (label 1 ascending aorta
AAo, 2 proximal descending aorta DAo), the lumen area in each frame is the labelled pixel count x
pixel area (mm2); the maximum and minimum over the cine are the systolic and diastolic areas; the
distensibility is (A_max - A_min) / (A_min x central PP) x 1000 in 10^-3 mmHg^-1, with the central
pulse pressure (covariate ``central_pp``, UK Biobank field 12678, mean of instances 2.0 and 2.1)
from the Vicorder's pulse-wave analysis. As there, a central PP under 10 mmHg is discarded: the
distensibility is then NaN (so it is without a pressure), with the reason in ``ctx.reasons``;
the areas stay.

One departure, for precision: where the segmentation model measured sub-pixel areas (a model
trained on partial-volume targets; ``seg_ao_areas.parquet`` beside the labels,
:mod:`cardiopheno.io.areas`), those replace the pixel counts, and the curve is smoothed over time
(a periodic Gaussian of SD ``smooth_ms``, config ``phenotypes.aortic_function``; the cine is one
cardiac cycle) before its maximum and minimum are taken. Distensibility divides an area change of
a few tens of pixels: counting whole pixels costs 5-7 % of it even on perfect labels, and the
extremes of 100 frames pick the extremes of each frame's own estimation noise, which inflates the
change (BENCHMARKS.md, "Aorta"). Provided segmentations are counted, unsmoothed, as the anchor
counts them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import ndimage

from cardiopheno import ASCENDING_AORTA, DESCENDING_AORTA
from cardiopheno.phenotypes.registry import PhenotypeSpec, SubjectContext

FAMILY = "aortic_function"
VIEW = "ao"
VESSELS = {
    "AAo": ("ascending aorta", ASCENDING_AORTA),
    "DAo": ("descending aorta", DESCENDING_AORTA),
}
MIN_CENTRAL_PP_MMHG = 10.0  # the anchor discards central pulse pressures below this
# SD (ms) of the temporal smoothing of model-measured area curves: about one frame of UK
# Biobank's 100-frame aortic cine (RR / 100 = 6-13 ms); chosen on synthetic seed 303
# (BENCHMARKS.md, "Aorta"); phenotypes.aortic_function.smooth_ms overrides it
SMOOTH_MS = 10.0
OUTPUTS = [
    spec
    for short, (name, _) in VESSELS.items()
    for spec in (
        PhenotypeSpec(f"{short}_max_area", "mm2", f"{name} maximum lumen area over the cine"),
        PhenotypeSpec(f"{short}_min_area", "mm2", f"{name} minimum lumen area over the cine"),
        PhenotypeSpec(
            f"{short}_distensibility",
            "10-3/mmHg",
            f"{name} distensibility, (max - min area) / (min area x central pulse pressure) x 1000",
        ),
    )
]


def area_curves(
    labels: np.ndarray, pixel_area_mm2: float, subpixel: Mapping[int, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Per-frame lumen area (mm2) of each vessel: the segmentation model's sub-pixel areas where
    given (``subpixel``, label -> curve; :attr:`ViewData.areas`), else the pixel count of an
    X x Y x slices x frames label map."""
    subpixel = subpixel or {}
    return {
        short: subpixel[label]
        if label in subpixel
        else np.count_nonzero(labels == label, axis=(0, 1, 2)) * pixel_area_mm2
        for short, (_, label) in VESSELS.items()
    }


def smooth_cycle(curve: np.ndarray, sd_ms: float, frame_interval_ms: float | None) -> np.ndarray:
    """A one-cycle curve smoothed by a periodic Gaussian of SD ``sd_ms``; unsmoothed when the frame
    interval is unknown (the SD in frames is not then known either)."""
    if not frame_interval_ms or frame_interval_ms <= 0 or len(curve) < 3:
        return curve
    return ndimage.gaussian_filter1d(curve, sd_ms / frame_interval_ms, mode="wrap")


def central_pulse_pressure(covariates: Mapping[str, float]) -> tuple[float, str]:
    """(central PP in mmHg, "") or (NaN, why it cannot be used)."""
    try:
        pp = float(covariates.get("central_pp", math.nan))
    except (TypeError, ValueError):
        pp = math.nan
    if math.isnan(pp):
        return math.nan, "no central pulse pressure (covariate central_pp)"
    if pp < MIN_CENTRAL_PP_MMHG:
        return math.nan, f"central pulse pressure {pp:g} mmHg < {MIN_CENTRAL_PP_MMHG:g} mmHg"
    return pp, ""


def compute(ctx: SubjectContext) -> dict[str, float]:
    view = ctx.view(VIEW)
    if view is None:  # the registry does not call us then; direct callers get the same answer
        ctx.explain([s.name for s in OUTPUTS], f"no {VIEW} view")
        return {}
    pp, why = central_pulse_pressure(ctx.covariates)
    out: dict[str, float] = {}
    pixel_area = view.spacing[0] * view.spacing[1]
    smooth_ms = float(ctx.options.get(FAMILY, {}).get("smooth_ms", SMOOTH_MS))
    for short, area in area_curves(view.labels, pixel_area, view.areas).items():
        if view.areas and smooth_ms > 0:
            area = smooth_cycle(area, smooth_ms, view.frame_interval_ms)
        if not area.any():
            ctx.explain([s.name for s in OUTPUTS if s.name.startswith(short)], f"no {short} label")
            continue
        a_max, a_min = float(area.max()), float(area.min())
        out[f"{short}_max_area"] = a_max
        out[f"{short}_min_area"] = a_min
        if why:
            ctx.explain([f"{short}_distensibility"], why)
        elif a_min <= 0:  # the vessel vanishes in some frame: no diastolic area to divide by
            ctx.explain([f"{short}_distensibility"], f"{short} absent in some frame")
        else:
            out[f"{short}_distensibility"] = (a_max - a_min) / (a_min * pp) * 1000.0
    return out
