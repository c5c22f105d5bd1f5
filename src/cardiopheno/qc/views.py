"""QC of the views beside the short axis, by phenotype family: a failed check masks that family's
phenotypes for the subject (``qc_masked_idps``; the statistics leave them out) and leaves the
short-axis verdict (``qc_pass``) alone, so a bad 4-chamber cine never costs a subject its
ventricular volumes.

Atria (ukbb_cardiac's ``atrium_pass_quality_control``), per atrium and view: the atrium is
present in every frame; no frame splits it into two components of more than 10 pixels; its area
never jumps by a factor of 2 or more between consecutive frames (cyclically).

Whether to trust a view on a real scan, which a phantom-trained model can get wholly wrong while
every shape check passes (a 12 mL "RA" for a 109 mL atrium): the views' test-time-augmentation
agreement per atrium (``atria_tta_agreement``), the 4-chamber ventricles against the short axis
along the planes' intersection (``la_4ch_matches_sa``, :mod:`cardiopheno.qc.crossview`: a
4-chamber map that disagrees there is not trusted for its atria either), the 2- and 4-chamber
LA along the line where those planes meet (``la_2ch_matches_la_4ch``), each 4-chamber atrium
beside its ventricle in every frame (``atria_adjoin_ventricles``), and atrial volumes and
emptying fractions an adult can have (``atria_plausible``). Each failure masks the IDPs of the
atria it concerns, with its reason.

Aorta: :mod:`cardiopheno.qc.aorta` (the anchor's checks plus fragments and the vessels' area
ratio); a failure masks both vessels' areas and distensibilities.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from cardiopheno.qc.aorta import AORTA_CHECKS, AORTA_DESCRIPTIONS, AortaQCThresholds, check_aorta
from cardiopheno.qc.checks import CheckResult
from cardiopheno.qc.crossview import atrium_agreement, ventricle_agreement

ATRIA = {"la_2ch": {"LA": 1}, "la_4ch": {"LA": 4, "RA": 5}}
# seg4_la_4ch: the labels of the ventricle each atrium opens into (LV cavity or myocardium; RV)
ATRIAL_VENTRICLES = {"LA": (1, 2), "RA": (3,)}
ATRIAL_IDPS = {
    "LA": ("LAV_max", "LAV_min", "LASV", "LAEF"),
    "RA": ("RAV_max", "RAV_min", "RASV", "RAEF"),
}
AORTIC_IDPS = tuple(
    f"{v}_{k}" for v in ("AAo", "DAo") for k in ("max_area", "min_area", "distensibility")
)
SHAPE_CHECKS = ("atria_present", "atria_single_component", "atria_smooth_area")
TRUST_CHECKS = (
    "atria_tta_agreement",
    "la_4ch_matches_sa",
    "la_2ch_matches_la_4ch",
    "atria_adjoin_ventricles",
    "atria_plausible",
)
ATRIAL_CHECKS = (*SHAPE_CHECKS, *TRUST_CHECKS)
VIEW_CHECKS = (*ATRIAL_CHECKS, *AORTA_CHECKS)
VIEW_DESCRIPTIONS = {
    "atria_present": "every atrium has area in every frame of its long-axis views",
    "atria_single_component": "no frame splits an atrium into several components (> 10 pixels)",
    "atria_smooth_area": "no atrial area changes by a factor of 2 or more between frames",
    "atria_tta_agreement": "each atrium stable under the view's test-time augmentation (Dice)",
    "la_4ch_matches_sa": "4-chamber LV and RV agree with the short axis where the planes meet",
    "la_2ch_matches_la_4ch": "the 2- and 4-chamber views label the LA alike where they meet",
    "atria_adjoin_ventricles": "each 4-chamber atrium touches its ventricle in every frame",
    "atria_plausible": "atrial volumes and emptying fractions within what an adult can have",
    **AORTA_DESCRIPTIONS,
}
MIN_COMPONENT_PIXELS = 10
MAX_AREA_RATIO = 2.0


@dataclass(frozen=True)
class ViewQCThresholds:
    """Thresholds of the trust checks; config ``qc: views:``."""

    # failures on real cines measured 0.28-0.41 (issue #30), good phantom cines > 0.9
    min_tta_dice: float = 0.7
    # a failed 4-chamber map (ventricles swapped or misplaced) reads 0.0 along the line; correct
    # maps read 0.96 / 0.96 (M&Ms-2 001's experts at ED) down to 0.37 in some frames of the
    # phantom's own truth labels (its RV moves a little differently in the two views; real
    # cines add breath-hold shifts), and the demo's model labels dip to 0.18 in 2 % of one
    # subject's frames: 0.2 flags the failures and none of those
    min_crossview_dice: float = 0.2
    # share of 4-chamber frames allowed below it (phases of two cines never match exactly)
    max_crossview_bad_fraction: float = 0.1
    # largest gap (mm) between a 4-chamber atrium and its ventricle in any frame: an atrium sits
    # on its valve, one pixel away (every frame of M&Ms-2 001 and CineMA's subject; the phantom's
    # model labels at most 4.9 mm); atria drawn on a ghost or a vessel lie 70-120 mm away
    max_atrium_gap_mm: float = 10.0
    # wide limits of what an adult can have, not normal ranges (UK Biobank normal LAV_max
    # about 35-110 mL, RAV_max 40-170 mL; Petersen et al., JCMR 2017)
    ranges: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "LAV_max": (20.0, 300.0),
            "LAV_min": (3.0, 250.0),
            "LAEF": (5.0, 90.0),
            "RAV_max": (25.0, 400.0),
            "RAV_min": (3.0, 350.0),
            "RAEF": (5.0, 90.0),
        }
    )

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> ViewQCThresholds:
        cfg = dict(cfg or {})
        if "ranges" in cfg:
            cfg["ranges"] = {k: (float(v[0]), float(v[1])) for k, v in cfg["ranges"].items()}
        return cls(**cfg)


@dataclass
class ViewEvidence:
    """What besides the views' own label maps tells whether to trust them."""

    tta: Mapping[str, float] = field(default_factory=dict)  # "<view>:<key>" -> TTA Dice
    affines: Mapping[str, np.ndarray] = field(default_factory=dict)  # view -> affine
    sa_labels: np.ndarray | None = None  # X x Y x Z x T short-axis labels
    sa_affine: np.ndarray | None = None
    phenotypes: Mapping[str, float] = field(default_factory=dict)


def check_atria(
    views: dict[str, np.ndarray],
) -> tuple[list[CheckResult], set[str]]:
    """Run the atrial checks on the label maps (X x Y x 1 x T) of the long-axis views a subject
    has; return the results and the IDPs to mask. Checks of absent views are not run."""
    reasons: dict[str, list[str]] = {c: [] for c in SHAPE_CHECKS}
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
        return [CheckResult.skipped(c, "no long-axis views") for c in SHAPE_CHECKS], set()
    results = [
        CheckResult.fail(c, "; ".join(r)) if r else CheckResult.ok(c) for c, r in reasons.items()
    ]
    masked = {idp for name in failed_atria for idp in ATRIAL_IDPS[name]}
    return results, masked


def check_tta(views, evidence: ViewEvidence, th: ViewQCThresholds) -> tuple[CheckResult, set]:
    """Atria whose view's test-time-augmentation Dice is below ``th.min_tta_dice``."""
    low, seen = [], False
    failed: set[str] = set()
    for view, atria in ATRIA.items():
        for name in atria:
            value = evidence.tta.get(f"{view}:{name.lower()}", math.nan)
            if views.get(view) is None or not math.isfinite(value):
                continue
            seen = True
            if value < th.min_tta_dice:
                low.append(f"{name} in {view} {value:.2f}")
                failed.add(name)
    name = "atria_tta_agreement"
    if not seen:
        return CheckResult.skipped(name, "no test-time augmentation of the atria"), set()
    if low:
        why = f"test-time augmentation Dice below {th.min_tta_dice}: {', '.join(low)}"
        return CheckResult.fail(name, why), failed
    return CheckResult.ok(name), set()


def check_crossview(views, evidence: ViewEvidence, th: ViewQCThresholds) -> tuple[CheckResult, set]:
    """The 4-chamber ventricles against the short axis in every 4-chamber frame, each paired with
    the short-axis frame at the same point of the cycle. More than ``max_crossview_bad_fraction``
    of the frames below ``min_crossview_dice`` (LV or RV) distrusts both atria the 4-chamber map
    gives: their maxima and minima come from any frame."""
    name = "la_4ch_matches_sa"
    la, affine = views.get("la_4ch"), evidence.affines.get("la_4ch")
    sa, sa_affine = evidence.sa_labels, evidence.sa_affine
    if la is None or affine is None or sa is None or sa_affine is None:
        return CheckResult.skipped(name, "needs the 4-chamber and short-axis segmentations"), set()

    def agree(f: int, g: int):
        return ventricle_agreement(sa[..., g], sa_affine, la[:, :, 0, f], affine)

    return _judge_frames(
        name, "4-chamber vs short-axis", la.shape[-1], sa.shape[-1], agree, th, {"LA", "RA"}
    )


def check_la_views(views, evidence: ViewEvidence, th: ViewQCThresholds) -> tuple[CheckResult, set]:
    """The LA of the 2-chamber view against the 4-chamber view's along the line where the planes
    meet (the LV's long axis), frame by frame, with the cross-view thresholds. Which view is
    wrong cannot be told, so a failure distrusts the LA (its biplane volumes use both)."""
    name = "la_2ch_matches_la_4ch"
    la2, la4 = views.get("la_2ch"), views.get("la_4ch")
    aff2, aff4 = evidence.affines.get("la_2ch"), evidence.affines.get("la_4ch")
    if la2 is None or la4 is None or aff2 is None or aff4 is None:
        return CheckResult.skipped(name, "needs the 2- and 4-chamber segmentations"), set()

    def agree(f: int, g: int):
        return atrium_agreement(la2[:, :, 0, f], aff2, la4[:, :, 0, g], aff4)

    return _judge_frames(
        name, "2- vs 4-chamber LA", la2.shape[-1], la4.shape[-1], agree, th, {"LA"}
    )


def _judge_frames(name, what, n_a, n_b, agree, th: ViewQCThresholds, atria: set[str]):
    """Frame f of cine A against frame round(f x n_b / n_a) of cine B (both triggered on the same
    R wave, so at the same point of the cycle); fails when more than
    ``max_crossview_bad_fraction`` of the judged frames read below ``min_crossview_dice``."""
    bad, judged, worst, lowest = [], 0, {}, math.inf
    for f in range(n_a):
        result = agree(f, int(round(f * n_b / n_a)) % n_b)
        if not result.valid or not any(math.isfinite(v) for v in result.dice.values()):
            continue
        judged += 1
        low = {k: v for k, v in result.dice.items() if not v >= th.min_crossview_dice}
        if low:
            bad.append(f)
            value = min(np.nan_to_num(list(low.values()), nan=0.0))
            if value < lowest:
                worst, lowest = low, value
    if not judged:
        return CheckResult.skipped(name, "the planes share too few pixels"), set()
    if len(bad) > th.max_crossview_bad_fraction * judged:
        text = ", ".join(f"{k.upper()} {v:.2f}" for k, v in worst.items())
        why = (
            f"{what} Dice along the planes' intersection below {th.min_crossview_dice} in "
            f"{len(bad)} of {judged} frames ({_frames(bad)}; worst {text})"
        )
        return CheckResult.fail(name, why), atria
    return CheckResult.ok(name), set()


def check_adjoin(views, evidence: ViewEvidence, th: ViewQCThresholds) -> tuple[CheckResult, set]:
    """Each 4-chamber atrium (LA next to the LV cavity or myocardium, RA next to the RV) within
    ``th.max_atrium_gap_mm`` of its ventricle in every frame where both are drawn: an atrium
    drawn on a ghost, a vessel or the neck is one piece and a plausible size, but far away."""
    name = "atria_adjoin_ventricles"
    la, affine = views.get("la_4ch"), evidence.affines.get("la_4ch")
    if la is None or affine is None:
        return CheckResult.skipped(name, "needs the 4-chamber segmentation and its affine"), set()
    spacing = tuple(float(np.linalg.norm(affine[:3, k])) for k in range(2))
    far, failed = [], set()
    for atrium, ventricle in ATRIAL_VENTRICLES.items():
        label = ATRIA["la_4ch"][atrium]
        frames, worst = [], 0.0
        for t in range(la.shape[-1]):
            plane = la[:, :, 0, t]
            inside, beside = plane == label, np.isin(plane, ventricle)
            if not inside.any() or not beside.any():
                continue
            gap = float(ndimage.distance_transform_edt(~beside, sampling=spacing)[inside].min())
            if gap > th.max_atrium_gap_mm:
                frames.append(t)
                worst = max(worst, gap)
        if frames:
            far.append(f"{atrium} {worst:.0f} mm from its ventricle in frame(s) {_frames(frames)}")
            failed.add(atrium)
    if far:
        why = f"more than {th.max_atrium_gap_mm:g} mm apart: " + "; ".join(far)
        return CheckResult.fail(name, why), failed
    return CheckResult.ok(name), set()


def check_plausible(views, evidence: ViewEvidence, th: ViewQCThresholds) -> tuple[CheckResult, set]:
    """Atrial phenotypes outside what an adult can have distrust their atrium."""
    name = "atria_plausible"
    problems, failed = [], set()
    for idp, (lo, hi) in th.ranges.items():
        value = float(evidence.phenotypes.get(idp, math.nan))
        if math.isfinite(value) and not lo <= value <= hi:
            problems.append(f"{idp} {value:.1f} outside {lo:g}-{hi:g}")
            failed.add(idp[:2])
    if not any(math.isfinite(float(evidence.phenotypes.get(k, math.nan))) for k in th.ranges):
        return CheckResult.skipped(name, "no atrial phenotypes"), set()
    if problems:
        return CheckResult.fail(name, "; ".join(problems)), failed
    return CheckResult.ok(name), set()


def check_views(
    views: dict[str, np.ndarray],
    ao_image: np.ndarray | None = None,
    aorta: AortaQCThresholds | None = None,
    evidence: ViewEvidence | None = None,
    thresholds: ViewQCThresholds | None = None,
) -> tuple[list[CheckResult], set[str]]:
    """Every view check on the label maps a subject has; the results and the IDPs to mask."""
    results, masked = check_atria(views)
    if any(views.get(v) is not None for v in ATRIA):
        evidence, th = evidence or ViewEvidence(), thresholds or ViewQCThresholds()
        for check in (check_tta, check_crossview, check_la_views, check_adjoin, check_plausible):
            result, atria = check(views, evidence, th)
            results.append(result)
            masked |= {idp for name in atria for idp in ATRIAL_IDPS[name]}
    else:
        results += [CheckResult.skipped(c, "no long-axis views") for c in TRUST_CHECKS]
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
