"""LV function: volumes at ED and ES, stroke volume, ejection fraction, output, mass.

Definitions (docs/phenotypes.md, as ukbb_cardiac): volume = voxel count x voxel volume with the slice
spacing as through-plane size; ES = frame of minimum LV cavity volume, ED = maximum (or frame 0
with ``ed_frame: first``); SV = EDV - ESV; EF = 100 SV / EDV; HR = 60000 / (frames x frame
interval in ms), i.e. one cardiac cycle per cine (retrospectively gated, as UK Biobank), NaN when
the header gives no frame interval; CO = SV x HR / 1000; LVM = 1.05 g/mL x myocardial volume at
ED. Indexed values divide by the Mosteller BSA = sqrt(height_cm x weight_kg / 3600) in m2, and
are NaN when height or weight is missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM
from cardiopheno.definitions import MYOCARDIAL_DENSITY_G_PER_ML, ejection_fraction
from cardiopheno.phenotypes.registry import PhenotypeSpec, SubjectContext

FAMILY = "lv_function"
# why values are NaN when a covariate or the timing is missing (ctx.reasons)
BSA_MISSING = "no height and weight for BSA (covariates height_cm, weight_kg)"
FRAME_INTERVAL_MISSING = "no frame interval in the NIfTI header (pixdim[4])"
OUTPUTS = [
    PhenotypeSpec("ED_frame", "", "end-diastolic frame index (0-based)", "int"),
    PhenotypeSpec(
        "ES_frame", "", "end-systolic frame index (0-based): minimum LV cavity volume", "int"
    ),
    PhenotypeSpec("LVEDV", "mL", "LV end-diastolic volume"),
    PhenotypeSpec("LVESV", "mL", "LV end-systolic volume"),
    PhenotypeSpec("LVSV", "mL", "LV stroke volume, LVEDV - LVESV"),
    PhenotypeSpec("LVEF", "%", "LV ejection fraction, 100 LVSV / LVEDV"),
    PhenotypeSpec("HR", "bpm", "heart rate, 60000 / (frames x frame interval ms); NaN if unknown"),
    PhenotypeSpec("LVCO", "L/min", "LV cardiac output, LVSV x HR / 1000"),
    PhenotypeSpec(
        "LVM",
        "g",
        f"LV myocardial mass, {MYOCARDIAL_DENSITY_G_PER_ML} g/mL x myocardial volume at ED",
    ),
    PhenotypeSpec("BSA", "m2", "body surface area, Mosteller sqrt(height_cm weight_kg / 3600)"),
    PhenotypeSpec("LVEDVi", "mL/m2", "LVEDV / BSA"),
    PhenotypeSpec("LVESVi", "mL/m2", "LVESV / BSA"),
    PhenotypeSpec("LVSVi", "mL/m2", "LVSV / BSA"),
    PhenotypeSpec("LVMi", "g/m2", "LVM / BSA"),
]


def explain_missing_covariates(
    ctx: SubjectContext, indexed: Sequence[str], timed: Sequence[str] = ()
) -> None:
    """Say why BSA-indexed outputs (``indexed``) or heart-rate outputs (``timed``) are NaN:
    no height and weight, or no frame interval in the header (nothing when they are known)."""
    if math.isnan(ctx.bsa_m2):
        ctx.explain(indexed, BSA_MISSING)
    if math.isnan(ctx.heart_rate_bpm):
        ctx.explain(timed, FRAME_INTERVAL_MISSING)


def compute(ctx: SubjectContext) -> dict[str, float]:
    ed, es = ctx.ed_frame, ctx.es_frame
    edv = ctx.label_volume(LV_CAVITY, ed)
    esv = ctx.label_volume(LV_CAVITY, es)
    sv = edv - esv
    hr = ctx.heart_rate_bpm
    lvm = MYOCARDIAL_DENSITY_G_PER_ML * ctx.label_volume(LV_MYOCARDIUM, ed)
    bsa = ctx.bsa_m2
    explain_missing_covariates(ctx, ["BSA", "LVEDVi", "LVESVi", "LVSVi", "LVMi"], ["HR", "LVCO"])
    return {
        "ED_frame": ed,
        "ES_frame": es,
        "LVEDV": edv,
        "LVESV": esv,
        "LVSV": sv,
        "LVEF": ejection_fraction(edv, esv),
        "HR": hr,
        "LVCO": sv * hr / 1000.0,
        "LVM": lvm,
        "BSA": bsa,
        "LVEDVi": edv / bsa,
        "LVESVi": esv / bsa,
        "LVSVi": sv / bsa,
        "LVMi": lvm / bsa,
    }
