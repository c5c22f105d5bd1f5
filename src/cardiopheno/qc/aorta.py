"""Quality control of an aortic cine segmentation (view ``ao``: 1 ascending, 2 descending aorta).

The first five checks are the anchor's (ukbb_cardiac common/cardiac_utils.py,
``aorta_pass_quality_control``), with its thresholds as defaults; the anchor drops a subject at
the first failure, here every check reports. Per vessel:

- ``ao_vessels_present``: the vessel is labelled in every frame;
- ``ao_image_noise``: the brightest labelled pixel of any frame is under ``max_intensity_ratio``
  x the vessel's mean intensity in the first frame (noise spikes make segmentations unreliable);
- ``ao_components``: at most ``max_large_components`` connected components (8-connected) larger
  than ``min_component_pixels`` in any frame; ours adds a limit on the share of the vessel in
  the small fragments, ``max_fragment_fraction``, which catches noisy speckled segmentations;
- ``ao_frame_jumps``: the area changes by less than a factor ``max_frame_ratio`` between
  consecutive frames (cyclically: the cine is one cardiac cycle). The anchor allows 2; ours
  defaults to 1.25, because a 100-frame cine's lumen changes by a few per cent a frame and a
  single-frame glitch of x1.4 (seen in a model segmentation) would otherwise become A_max;
- ``ao_area_range``: maximum / minimum area over the cine under ``max_cycle_ratio``;
- ``ao_vessel_ratio`` (ours): the mean AAo / DAo area ratio within ``vessel_area_ratio``;
  outside it the labels are likely swapped or one vessel caught a neighbour (pulmonary
  trunk, SVC). In adults the ascending aorta is about 1.2-2.5 times the descending's area.

Each check is a function returning a :class:`~cardiopheno.qc.checks.CheckResult` whose reason
names the vessel and the frame; :func:`check_aorta` runs them all from :class:`AortaQCThresholds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
from scipy import ndimage

from cardiopheno import ASCENDING_AORTA, DESCENDING_AORTA
from cardiopheno.qc.checks import CheckResult

VESSELS = {"AAo": ASCENDING_AORTA, "DAo": DESCENDING_AORTA}
AORTA_CHECKS = (
    "ao_vessels_present",
    "ao_image_noise",
    "ao_components",
    "ao_frame_jumps",
    "ao_area_range",
    "ao_vessel_ratio",
)
AORTA_DESCRIPTIONS = {
    "ao_vessels_present": "ascending and descending aorta labelled in every frame",
    "ao_image_noise": "no intensity spikes inside the aorta (max over first-frame mean)",
    "ao_components": "each aorta one connected region per frame, few stray fragments",
    "ao_frame_jumps": "no abrupt area change between consecutive frames",
    "ao_area_range": "max / min area over the cycle plausible",
    "ao_vessel_ratio": "ascending / descending aortic area ratio plausible (labels not swapped)",
}
_EIGHT = np.ones((3, 3), bool)  # 8-connectivity in plane, as the anchor's skimage label


@dataclass(frozen=True)
class AortaQCThresholds:
    """Thresholds of the aortic checks (the anchor's values where it has them)."""

    max_intensity_ratio: float = 3.0
    min_component_pixels: int = 10
    max_large_components: int = 1
    max_fragment_fraction: float = 0.05
    max_frame_ratio: float = 1.25
    max_cycle_ratio: float = 2.0
    vessel_area_ratio: tuple[float, float] = (0.8, 4.0)

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> AortaQCThresholds:
        """From a config mapping of these names (lists become tuples); unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg or {}) - names)
        if unknown:
            raise ValueError(f"unknown aortic qc key(s): {unknown}; known: {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in (cfg or {}).items()})


def _as4d(labels: np.ndarray) -> np.ndarray:
    return labels[..., np.newaxis] if labels.ndim == 3 else labels


def area_counts(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Labelled pixels per frame of each vessel."""
    labels = _as4d(labels)
    return {v: np.count_nonzero(labels == k, axis=(0, 1, 2)) for v, k in VESSELS.items()}


def vessels_present(labels: np.ndarray) -> CheckResult:
    """Each vessel labelled in every frame (anchor criterion 1)."""
    problems = []
    for vessel, area in area_counts(labels).items():
        empty = np.flatnonzero(area == 0)
        if empty.size:
            problems.append(
                f"{vessel} absent in {empty.size} of {area.size} frames (first: {empty[0]})"
            )
    return CheckResult("ao_vessels_present", not problems, "; ".join(problems))


def image_noise(
    image: np.ndarray, labels: np.ndarray, max_intensity_ratio: float = 3.0
) -> CheckResult:
    """Brightest labelled pixel per frame over the vessel's first-frame mean (anchor criterion 2)."""
    image, labels = _as4d(image), _as4d(labels)
    problems = []
    for vessel, k in VESSELS.items():
        first = image[..., 0][labels[..., 0] == k]
        if first.size == 0 or first.mean() <= 0:
            continue  # vessels_present reports it
        mean0 = float(first.mean())
        peaks = [
            float(image[..., t][labels[..., t] == k].max()) / mean0
            for t in range(labels.shape[3])
            if np.any(labels[..., t] == k)
        ]
        worst = int(np.argmax(peaks))
        if peaks[worst] >= max_intensity_ratio:
            problems.append(
                f"{vessel} intensity spike {peaks[worst]:.1f} x its first-frame mean at frame "
                f"{worst} (limit {max_intensity_ratio:g})"
            )
    return CheckResult("ao_image_noise", not problems, "; ".join(problems))


def components(
    labels: np.ndarray,
    min_component_pixels: int = 10,
    max_large_components: int = 1,
    max_fragment_fraction: float = 0.05,
) -> CheckResult:
    """Fragmentation: large components per frame (anchor criterion 3) and the share of the
    vessel outside its largest component over the cine (ours)."""
    labels = _as4d(labels)
    problems = []
    for vessel, k in VESSELS.items():
        total = outside = 0
        worst_t, worst_n = -1, 0
        for t in range(labels.shape[3]):
            n_large = 0
            for z in range(labels.shape[2]):
                comp, n_comp = ndimage.label(labels[:, :, z, t] == k, _EIGHT)
                if n_comp == 0:
                    continue
                sizes = np.bincount(comp.ravel())[1:]
                total += int(sizes.sum())
                outside += int(sizes.sum() - sizes.max())
                n_large += int(np.count_nonzero(sizes > min_component_pixels))
            if n_large > worst_n:
                worst_t, worst_n = t, n_large
        if worst_n > max_large_components:
            problems.append(
                f"{vessel} in {worst_n} components over {min_component_pixels} pixels at frame "
                f"{worst_t} (limit {max_large_components})"
            )
        if total and outside / total > max_fragment_fraction:
            problems.append(
                f"{100 * outside / total:.0f}% of {vessel} in fragments "
                f"(limit {100 * max_fragment_fraction:.0f}%)"
            )
    return CheckResult("ao_components", not problems, "; ".join(problems))


def frame_jumps(labels: np.ndarray, max_frame_ratio: float = 1.25) -> CheckResult:
    """Area ratio between consecutive frames, cyclically (anchor criterion 4)."""
    problems = []
    for vessel, area in area_counts(labels).items():
        prev = np.roll(area, 1).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(prev > 0, area / prev, np.inf)
        bad = (ratio >= max_frame_ratio) | (ratio <= 1.0 / max_frame_ratio)
        bad &= (area > 0) | (prev > 0)
        if bad.any():
            t = int(np.flatnonzero(bad)[0])
            problems.append(
                f"{vessel} area {int(np.roll(area, 1)[t])} -> {int(area[t])} pixels at frame {t} "
                f"({int(bad.sum())} jumps of x{max_frame_ratio:g} or more)"
            )
    return CheckResult("ao_frame_jumps", not problems, "; ".join(problems))


def area_range(labels: np.ndarray, max_cycle_ratio: float = 2.0) -> CheckResult:
    """Maximum over minimum area over the cine (anchor criterion 5)."""
    problems = []
    for vessel, area in area_counts(labels).items():
        if not area.any():
            continue
        lo = int(area.min())
        if lo == 0 or area.max() / lo >= max_cycle_ratio:
            ratio = "inf" if lo == 0 else f"{area.max() / lo:.2f}"
            problems.append(f"{vessel} max/min area {ratio} (limit {max_cycle_ratio:g})")
    return CheckResult("ao_area_range", not problems, "; ".join(problems))


def vessel_ratio(
    labels: np.ndarray, vessel_area_ratio: tuple[float, float] = (0.8, 4.0)
) -> CheckResult:
    """Mean ascending over mean descending area within bounds (ours)."""
    areas = area_counts(labels)
    aao, dao = float(areas["AAo"].mean()), float(areas["DAo"].mean())
    if aao == 0 or dao == 0:
        return CheckResult.skipped("ao_vessel_ratio", "a vessel is not labelled")
    lo, hi = vessel_area_ratio
    ratio = aao / dao
    if lo <= ratio <= hi:
        return CheckResult.ok("ao_vessel_ratio")
    return CheckResult.fail(
        "ao_vessel_ratio", f"AAo/DAo mean area ratio {ratio:.2f} outside {lo:g}-{hi:g}"
    )


def check_aorta(
    labels: np.ndarray, image: np.ndarray | None = None, th: AortaQCThresholds | None = None
) -> list[CheckResult]:
    """All aortic checks, in :data:`AORTA_CHECKS` order (the noise check needs the image)."""
    th = th or AortaQCThresholds()
    labels = _as4d(labels)
    if image is None:
        noise = CheckResult.skipped("ao_image_noise", "no image")
    elif _as4d(image).shape != labels.shape:
        noise = CheckResult.skipped("ao_image_noise", "image and labels differ in shape")
    else:
        noise = image_noise(image, labels, th.max_intensity_ratio)
    return [
        vessels_present(labels),
        noise,
        components(
            labels, th.min_component_pixels, th.max_large_components, th.max_fragment_fraction
        ),
        frame_jumps(labels, th.max_frame_ratio),
        area_range(labels, th.max_cycle_ratio),
        vessel_ratio(labels, th.vessel_area_ratio),
    ]
