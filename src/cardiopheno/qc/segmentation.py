"""Segmentation checks on a 4D label map (X x Y x slices x frames, labels 1 LV, 2 myo, 3 RV).

ED and ES are the frames of max and min LV cavity volume (as the phenotypes define them). Each
check returns a readable reason naming what it saw, e.g. "LV absent on 3 of 10 slices".
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from cardiopheno import LABEL_NAMES, LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY
from cardiopheno.qc.checks import CheckResult, QCThresholds

_CLASSES = (LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY)
_SHORT = {LV_CAVITY: "LV", LV_MYOCARDIUM: "myocardium", RV_CAVITY: "RV"}


def slice_areas(labels: np.ndarray) -> np.ndarray:
    """Pixel counts per (label 0..3, slice, frame)."""
    return np.stack([np.count_nonzero(labels == k, axis=(0, 1)) for k in range(4)])


def ed_es_frames(areas: np.ndarray) -> tuple[int, int]:
    lv = areas[LV_CAVITY].sum(axis=0)
    return int(np.argmax(lv)), int(np.argmin(lv))


def check_segmentation(labels: np.ndarray, spacing, th: QCThresholds) -> list[CheckResult]:
    """All segmentation checks (readability is decided by whoever loaded the map)."""
    if labels.ndim == 3:
        labels = labels[..., np.newaxis]
    areas = slice_areas(labels)
    if not areas[LV_CAVITY].any():
        reason = "no LV cavity in any frame"
        return [CheckResult.ok("seg_readable"), CheckResult.fail("seg_classes", reason)] + [
            CheckResult.skipped(n, reason)
            for n in (
                "seg_lv_coverage",
                "seg_components",
                "seg_myo_encloses_lv",
                "seg_base_apex",
                "seg_frame_consistency",
                "seg_slice_alignment",
            )
        ]
    ed, es = ed_es_frames(areas)
    frames = {"ED": ed, "ES": es} if ed != es else {"ED": ed}
    return [
        CheckResult.ok("seg_readable"),
        _classes(areas, frames, th),
        _lv_coverage(areas[:, :, ed], th),
        _components(labels, frames, th),
        _enclosure(labels, frames, th),
        _base_apex(areas[:, :, ed], th),
        _frame_consistency(areas, th),
        _slice_alignment(labels[..., ed], spacing, th),
    ]


def _classes(areas: np.ndarray, frames: dict[str, int], th: QCThresholds) -> CheckResult:
    problems = []
    n_slices = areas.shape[1]
    for phase, t in frames.items():
        for k in _CLASSES:
            n = int(np.count_nonzero(areas[k, :, t]))
            if n < th.min_slices_per_class:
                problems.append(f"{_SHORT[k]} on {n} of {n_slices} slices at {phase}")
    return CheckResult("seg_classes", not problems, "; ".join(problems))


def _lv_run(lv_area: np.ndarray) -> tuple[int, int]:
    idx = np.nonzero(lv_area)[0]
    return int(idx[0]), int(idx[-1])


def _lv_coverage(areas_ed: np.ndarray, th: QCThresholds) -> CheckResult:
    """LV cavity on at least ``min_lv_slices`` slices and without gaps between its ends."""
    lv = areas_ed[LV_CAVITY]
    n_slices = lv.size
    present = int(np.count_nonzero(lv))
    first, last = _lv_run(lv)
    gaps = [z for z in range(first, last + 1) if lv[z] == 0]
    problems = []
    if present < th.min_lv_slices:
        problems.append(f"LV present on only {present} of {n_slices} slices")
    if gaps:
        problems.append(
            f"LV absent on {len(gaps)} of {n_slices} slices inside its span (slices {gaps[:6]})"
        )
    return CheckResult("seg_lv_coverage", not problems, "; ".join(problems))


def _components(labels: np.ndarray, frames: dict[str, int], th: QCThresholds) -> CheckResult:
    """Fraction of each class outside the largest 2D connected component of its slice."""
    problems = []
    structure = np.ones((3, 3), bool)  # 8-connectivity in plane
    for phase, t in frames.items():
        for k in _CLASSES:
            total = 0
            outside = 0
            for z in range(labels.shape[2]):
                mask = labels[:, :, z, t] == k
                n = int(np.count_nonzero(mask))
                if n == 0:
                    continue
                total += n
                lab, n_comp = ndimage.label(mask, structure)
                if n_comp > 1:
                    sizes = np.bincount(lab.ravel())[1:]
                    outside += n - int(sizes.max())
            limit = th.max_rv_fragment_fraction if k == RV_CAVITY else th.max_fragment_fraction
            if total and outside / total > limit:
                problems.append(
                    f"{100 * outside / total:.0f}% of {_SHORT[k]} in fragments at {phase} "
                    f"(limit {100 * limit:.0f}%)"
                )
    return CheckResult("seg_components", not problems, "; ".join(problems))


def _enclosure(labels: np.ndarray, frames: dict[str, int], th: QCThresholds) -> CheckResult:
    """On each slice with LV cavity, the pixels bordering the cavity should be myocardium."""
    problems = []
    for phase, t in frames.items():
        bad = []
        n_lv = 0
        for z in range(labels.shape[2]):
            sl = labels[:, :, z, t]
            cavity = sl == LV_CAVITY
            if not cavity.any():
                continue
            n_lv += 1
            border = ndimage.binary_dilation(cavity) & ~cavity
            n_border = int(np.count_nonzero(border))
            frac = np.count_nonzero(border & (sl == LV_MYOCARDIUM)) / max(n_border, 1)
            if frac < th.min_myo_enclosure:
                bad.append((z, frac))
        if len(bad) > th.max_open_slices:
            worst = ", ".join(f"slice {z} {100 * f:.0f}%" for z, f in bad[:4])
            problems.append(
                f"myocardium encloses the LV cavity on < {100 * th.min_myo_enclosure:.0f}% of its "
                f"border on {len(bad)} of {n_lv} LV slices at {phase} ({worst})"
            )
    return CheckResult("seg_myo_encloses_lv", not problems, "; ".join(problems))


def _base_apex(areas_ed: np.ndarray, th: QCThresholds) -> CheckResult:
    """Apex inside the stack and the segmentation reaching the base.

    The LV's two ends are told apart by cavity area (the base is the larger). Apex: if the LV
    runs to the edge of the stack on the apical side, its cavity there must already be small
    (< apex_max_area_fraction of the largest), else the stack stops before the apex. Likewise a
    large LV on the stack's basal edge slice (> base_edge_max_area_fraction) means the stack
    starts inside the ventricle and misses the base. Base reached: the
    basal-most LV slice must be large (>= base_min_area_fraction of the largest); a cavity that
    tapers towards the base means basal slices are missing from the segmentation.
    """
    lv = areas_ed[LV_CAVITY].astype(float)
    n = lv.size
    first, last = _lv_run(lv)
    biggest = lv.max()
    if lv[first] >= lv[last]:
        base, apex, base_edge, apex_edge = first, last, 0, n - 1
    else:
        base, apex, base_edge, apex_edge = last, first, n - 1, 0
    problems = []
    if first == last:
        problems.append(f"LV on a single slice ({first})")
    else:
        if apex == apex_edge and lv[apex] > th.apex_max_area_fraction * biggest:
            problems.append(
                f"apex not covered: LV at the stack's last slice ({apex}) is "
                f"{100 * lv[apex] / biggest:.0f}% of its largest area"
            )
        if base == base_edge and lv[base] > th.base_edge_max_area_fraction * biggest:
            problems.append(
                f"base not covered: LV at the stack's first slice ({base}) is "
                f"{100 * lv[base] / biggest:.0f}% of its largest area"
            )
        if lv[base] < th.base_min_area_fraction * biggest:
            problems.append(
                f"base not reached: basal-most LV slice ({base}) is "
                f"{100 * lv[base] / biggest:.0f}% of its largest area"
            )
    return CheckResult("seg_base_apex", not problems, "; ".join(problems))


def _frame_consistency(areas: np.ndarray, th: QCThresholds) -> CheckResult:
    """LV volume curve without single-frame spikes; myocardial volume stable over the cycle."""
    lv = areas[LV_CAVITY].sum(axis=0).astype(float)
    myo = areas[LV_MYOCARDIUM].sum(axis=0).astype(float)
    n_t = lv.size
    if n_t < 4:
        return CheckResult.ok("seg_frame_consistency")  # ED/ES-only data: nothing to compare
    problems = []
    empty = np.nonzero(lv == 0)[0]
    if empty.size:
        problems.append(f"no LV cavity in frame(s) {empty.tolist()[:6]}")
    # spike: a frame above (or below) both neighbours (cyclic) by the smaller of the two steps,
    # relative to EDV; a steep but monotone stretch of the curve is not a spike
    a, b = lv - np.roll(lv, 1), lv - np.roll(lv, -1)
    spike = np.where(np.sign(a) == np.sign(b), np.minimum(np.abs(a), np.abs(b)), 0.0) / lv.max()
    worst = int(np.argmax(spike))
    if spike[worst] > th.max_lv_spike:
        problems.append(
            f"LV volume spikes by {100 * spike[worst]:.0f}% of EDV at frame {worst} "
            f"(limit {100 * th.max_lv_spike:.0f}%)"
        )
    mean_myo = myo.mean()
    cv = float(myo.std() / mean_myo) if mean_myo > 0 else math.inf
    if cv > th.max_myo_cv:
        problems.append(
            f"myocardial volume varies by CV {100 * cv:.0f}% over frames "
            f"(limit {100 * th.max_myo_cv:.0f}%)"
        )
    return CheckResult("seg_frame_consistency", not problems, "; ".join(problems))


def _slice_alignment(seg_ed: np.ndarray, spacing, th: QCThresholds) -> CheckResult:
    """In-plane jump of the LV cavity centroid between adjacent slices at ED, in mm.

    A short-axis stack is planned along the LV long axis, so the cavity centres drift slowly; a
    slice acquired in a different breath-hold jumps. (Centroid via scipy.ndimage.center_of_mass.)
    """
    cav = seg_ed == LV_CAVITY
    zs = [z for z in range(cav.shape[2]) if cav[:, :, z].any()]
    if len(zs) < 2:
        return CheckResult.ok("seg_slice_alignment")
    c = np.array([ndimage.center_of_mass(cav[:, :, z]) for z in zs]) * np.asarray(spacing[:2])
    jumps = np.hypot(*np.diff(c, axis=0).T)
    worst = int(np.argmax(jumps))
    if jumps[worst] <= th.max_centroid_shift_mm:
        return CheckResult.ok("seg_slice_alignment")
    n_bad = int((jumps > th.max_centroid_shift_mm).sum())
    return CheckResult.fail(
        "seg_slice_alignment",
        f"LV centre jumps {jumps[worst]:.1f} mm between slices {zs[worst]} and {zs[worst + 1]} "
        f"({n_bad} jump(s) over {th.max_centroid_shift_mm:g} mm)",
    )


def check_tta(row, th: QCThresholds) -> CheckResult:
    """Model uncertainty: test-time-augmentation Dice from the segment stage (NaN when TTA off)."""
    values = {}
    for k in ("tta_dice_lv", "tta_dice_myo", "tta_dice_rv"):
        v = getattr(row, k, math.nan) if not isinstance(row, dict) else row.get(k, math.nan)
        try:
            values[k] = float(v)
        except (TypeError, ValueError):
            values[k] = math.nan
    finite = {k: v for k, v in values.items() if math.isfinite(v)}
    if not finite:
        return CheckResult("seg_tta_agreement", True, "")  # TTA off or provided segmentation
    low = {k: v for k, v in finite.items() if v < th.min_tta_dice}
    if not low:
        return CheckResult.ok("seg_tta_agreement")
    text = ", ".join(f"{k[9:]} {v:.2f}" for k, v in low.items())
    return CheckResult.fail(
        "seg_tta_agreement", f"test-time augmentation Dice below {th.min_tta_dice}: {text}"
    )


__all__ = ["LABEL_NAMES", "check_segmentation", "check_tta", "ed_es_frames", "slice_areas"]
