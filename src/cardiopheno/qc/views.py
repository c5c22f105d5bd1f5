"""QC of the views beside the short axis, by phenotype family: a failed check masks that family's
phenotypes for the subject (``qc_masked_idps``; the statistics leave them out) and leaves the
short-axis verdict (``qc_pass``) alone, so a bad 4-chamber cine never costs a subject its
ventricular volumes.

Atria (ukbb_cardiac's ``atrium_pass_quality_control``), per atrium and view: the atrium is
present in every frame; no frame splits it into two components of more than 10 pixels; its area
never jumps by a factor of 2 or more between consecutive frames (cyclically).

Aorta: :mod:`cardiopheno.qc.aorta` (the anchor's checks plus fragments and the vessels' area
ratio); a failure masks both vessels' areas and distensibilities.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cardiopheno.qc.aorta import AORTA_CHECKS, AORTA_DESCRIPTIONS, AortaQCThresholds, check_aorta
from cardiopheno.qc.checks import CheckResult

ATRIA = {"la_2ch": {"LA": 1}, "la_4ch": {"LA": 4, "RA": 5}}
ATRIAL_IDPS = {
    "LA": ("LAV_max", "LAV_min", "LASV", "LAEF"),
    "RA": ("RAV_max", "RAV_min", "RASV", "RAEF"),
}
AORTIC_IDPS = tuple(
    f"{v}_{k}" for v in ("AAo", "DAo") for k in ("max_area", "min_area", "distensibility")
)
ATRIAL_CHECKS = ("atria_present", "atria_single_component", "atria_smooth_area")
VIEW_CHECKS = (*ATRIAL_CHECKS, *AORTA_CHECKS)
VIEW_DESCRIPTIONS = {
    "atria_present": "every atrium has area in every frame of its long-axis views",
    "atria_single_component": "no frame splits an atrium into several components (> 10 pixels)",
    "atria_smooth_area": "no atrial area changes by a factor of 2 or more between frames",
    **AORTA_DESCRIPTIONS,
}
MIN_COMPONENT_PIXELS = 10
MAX_AREA_RATIO = 2.0


def check_atria(
    views: dict[str, np.ndarray],
) -> tuple[list[CheckResult], set[str]]:
    """Run the atrial checks on the label maps (X x Y x 1 x T) of the long-axis views a subject
    has; return the results and the IDPs to mask. Checks of absent views are not run."""
    reasons: dict[str, list[str]] = {c: [] for c in ATRIAL_CHECKS}
    failed_atria: set[str] = set()
    ran = False
    for view, atria in ATRIA.items():
        labels = views.get(view)
        if labels is None:
            continue
        ran = True
        for name, label in atria.items():
            masks = labels[:, :, 0, :] == label
            area = masks.sum(axis=(0, 1))
            empty = np.flatnonzero(area == 0)
            if empty.size:
                reasons["atria_present"].append(
                    f"{name} absent in {view} frame(s) {_frames(empty)}"
                )
                failed_atria.add(name)
            split = [t for t in range(masks.shape[2]) if _n_components(masks[:, :, t]) > 1]
            if split:
                reasons["atria_single_component"].append(
                    f"{name} in several pieces in {view} frame(s) {_frames(split)}"
                )
                failed_atria.add(name)
            prev = np.roll(area, 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = area / prev
            jumps = np.flatnonzero(
                (area > 0)
                & (prev > 0)
                & ((ratio >= MAX_AREA_RATIO) | (ratio <= 1 / MAX_AREA_RATIO))
            )
            if jumps.size:
                reasons["atria_smooth_area"].append(
                    f"{name} area jumps x{float(np.max(np.maximum(ratio[jumps], 1 / ratio[jumps]))):.1f} "
                    f"in {view} at frame(s) {_frames(jumps)}"
                )
                failed_atria.add(name)
    if not ran:
        return [CheckResult.skipped(c, "no long-axis views") for c in ATRIAL_CHECKS], set()
    results = [
        CheckResult.fail(c, "; ".join(r)) if r else CheckResult.ok(c) for c, r in reasons.items()
    ]
    masked = {idp for name in failed_atria for idp in ATRIAL_IDPS[name]}
    return results, masked


def check_views(
    views: dict[str, np.ndarray],
    ao_image: np.ndarray | None = None,
    aorta: AortaQCThresholds | None = None,
) -> tuple[list[CheckResult], set[str]]:
    """Every view check on the label maps a subject has; the results and the IDPs to mask."""
    results, masked = check_atria(views)
    if views.get("ao") is None:
        results += [CheckResult.skipped(c, "no ao view") for c in AORTA_CHECKS]
    else:
        ao = check_aorta(views["ao"], ao_image, aorta)
        results += ao
        if any(r.passed is False for r in ao):
            masked |= set(AORTIC_IDPS)
    return results, masked


def _n_components(mask: np.ndarray) -> int:
    lab, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n < 2:
        return n
    sizes = np.bincount(lab.ravel())[1:]
    return int(np.count_nonzero(sizes > MIN_COMPONENT_PIXELS))


def _frames(idx) -> str:
    idx = [int(i) for i in idx]
    return ", ".join(map(str, idx[:5])) + (f" ... ({len(idx)} in all)" if len(idx) > 5 else "")
