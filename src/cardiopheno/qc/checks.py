"""The record every QC check returns, the thresholds they read, and the list of checks.

A check returns :class:`CheckResult` (passed, reason). ``passed`` is None when the check could
not run (for example segmentation checks on an unreadable image); a subject passes QC only when
no check failed and the basic ones (image and segmentation readable) ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool | None  # None: not run (an earlier failure made it meaningless)
    reason: str = ""

    @classmethod
    def ok(cls, name: str) -> CheckResult:
        return cls(name, True, "")

    @classmethod
    def fail(cls, name: str, reason: str) -> CheckResult:
        return cls(name, False, reason)

    @classmethod
    def skipped(cls, name: str, reason: str = "not run") -> CheckResult:
        return cls(name, None, reason)


@dataclass(frozen=True)
class QCThresholds:
    """Thresholds of every check; config ``qc:`` (workflow/schemas/config.qc.schema.yaml)."""

    # image
    min_in_plane: int = 48
    max_in_plane: int = 1024
    slices: tuple[int, int] = (4, 40)
    frames: tuple[int, int] = (8, 120)
    heart_rate_bpm: tuple[float, float] = (30.0, 200.0)
    in_plane_spacing_mm: tuple[float, float] = (0.4, 4.0)
    slice_spacing_mm: tuple[float, float] = (2.0, 20.0)
    min_relative_contrast: float = 0.05
    max_saturated_fraction: float = 0.05
    min_cnr: float = 6.0
    # segmentation
    min_slices_per_class: int = 2
    min_lv_slices: int = 3
    max_fragment_fraction: float = 0.05
    max_rv_fragment_fraction: float = 0.2
    min_myo_enclosure: float = 0.8
    max_open_slices: int = 1
    apex_max_area_fraction: float = 0.6
    base_edge_max_area_fraction: float = 0.5
    base_min_area_fraction: float = 0.3
    max_lv_spike: float = 0.15
    max_myo_cv: float = 0.15
    max_centroid_shift_mm: float = 5.0
    # phenotype
    ranges: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "LVEDV": (30.0, 450.0),
            "LVESV": (5.0, 350.0),
            "LVEF": (10.0, 85.0),
            "LVM": (30.0, 350.0),
            "RVEDV": (30.0, 450.0),
            "RVESV": (5.0, 350.0),
            "RVEF": (10.0, 85.0),
        }
    )
    sv_max_abs_diff_ml: float = 40.0
    sv_max_rel_diff: float = 0.4
    outlier_idps: tuple[str, ...] = ("LVEDV", "LVESV", "LVEF", "LVM", "RVEDV", "RVESV", "RVEF")
    outlier_z: float = 10.0
    # model uncertainty
    min_tta_dice: float = 0.8
    # strain tracking (advisory: a failure flags the strain values, not the subject)
    strain_min_es_dice: float = 0.7
    strain_max_es_contour_mm: float = 3.0
    strain_max_global_ecc: float = 0.0
    strain_max_abs_err: float = 100.0

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> QCThresholds:
        """Build from the ``qc:`` config section (nested image/segmentation/... or flat; the
        ``aorta`` and ``views`` subsections belong to :class:`cardiopheno.qc.aorta.AortaQCThresholds`
        and :class:`cardiopheno.qc.views.ViewQCThresholds`)."""
        flat: dict = {}
        where: dict[str, str] = {}  # key -> the section it came from
        for key, value in (cfg or {}).items():
            if key in ("aorta", "views"):
                continue
            given = value if isinstance(value, Mapping) and key != "ranges" else {key: value}
            section = key if given is value else "qc"
            twice = sorted(set(given) & set(flat))
            if twice:  # one section's key must not silently override another's
                raise ValueError(
                    f"qc config key(s) {twice} given in both {section} and "
                    f"{', '.join(sorted({where[k] for k in twice}))}"
                )
            flat.update(given)
            where.update(dict.fromkeys(given, section))
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(flat) - names)
        if unknown:
            raise ValueError(f"unknown qc config key(s): {unknown}; known: {sorted(names)}")
        conv = {}
        for key, value in flat.items():
            if key == "ranges":
                conv[key] = {k: (float(v[0]), float(v[1])) for k, v in value.items()}
            elif isinstance(value, list):
                conv[key] = tuple(value)
            else:
                conv[key] = value
        return cls(**conv)


IMAGE_CHECKS = (
    "img_readable",
    "img_dims",
    "img_spacing",
    "img_finite",
    "img_intensity",
    "img_frames",
)
SEGMENTATION_CHECKS = (
    "seg_readable",
    "seg_classes",
    "seg_lv_coverage",
    "seg_components",
    "seg_myo_encloses_lv",
    "seg_base_apex",
    "seg_frame_consistency",
    "seg_slice_alignment",
    "seg_tta_agreement",
)
PHENOTYPE_CHECKS = ("pheno_ranges", "pheno_sv_agreement")
COHORT_CHECKS = ("pheno_outlier",)
# Advisory checks: recorded but not part of qc_pass; a failure puts its reason in
# qc_view_reasons and the phenotypes it guards (names starting with ADVISORY_GUARDS) in
# qc_masked_idps, so only those values leave the statistics (stats.data.mask_failed_idps).
ADVISORY_CHECKS = ("strain_tracking",)
ADVISORY_GUARDS = ("Ecc_", "Err_")
ALL_CHECKS = (
    *IMAGE_CHECKS,
    *SEGMENTATION_CHECKS,
    *PHENOTYPE_CHECKS,
    *COHORT_CHECKS,
    *ADVISORY_CHECKS,
)
DESCRIPTIONS = {
    "img_readable": "image file reads as a 3D/4D NIfTI",
    "img_dims": "image matrix and slice count plausible",
    "img_spacing": "in-plane and slice spacing plausible",
    "img_finite": "no NaN or infinite voxels",
    "img_intensity": "intensity range not degenerate, no blank frame, little saturation",
    "img_noise": "contrast-to-noise plausible ((p99 - median) over Immerkaer noise SD)",
    "img_frames": "frame count plausible for a cine, heart rate from its timing physiological",
    "seg_readable": "segmentation exists, reads, matches the image grid, segment stage ok",
    "seg_classes": "LV cavity, myocardium and RV present on enough slices at ED and ES",
    "seg_lv_coverage": "LV cavity on enough slices, contiguous from base to apex",
    "seg_components": "each class one connected region per slice (few fragments)",
    "seg_myo_encloses_lv": "myocardium surrounds the LV cavity on each slice",
    "seg_base_apex": "stack covers the apex and the segmentation reaches the base",
    "seg_frame_consistency": "LV volume curve without spikes, myocardial volume stable over frames",
    "seg_slice_alignment": "LV cavity centres line up from slice to slice (no breath-hold shift)",
    "seg_tta_agreement": "segmentation stable under test-time augmentation (Dice)",
    "pheno_ranges": "phenotypes within physiological ranges",
    "pheno_sv_agreement": "LV and RV stroke volumes agree",
    "pheno_outlier": "no robust cohort outlier (median/MAD z over QC-passed subjects)",
    "strain_tracking": "motion tracking agrees with the ES segmentation and strain is plausible "
    "(advisory: failing flags only the strain values)",
}
