"""RV function: RV volumes read at the LV's ED and ES frames (as ukbb_cardiac), SV, EF, indexed.

Volumes, SV and EF are defined as for the LV (lv_function.py); indexed values divide by the
Mosteller BSA and are NaN without height and weight.
"""

from __future__ import annotations

from cardiopheno import RV_CAVITY
from cardiopheno.definitions import ejection_fraction
from cardiopheno.phenotypes.lv_function import explain_missing_covariates
from cardiopheno.phenotypes.registry import PhenotypeSpec, SubjectContext

FAMILY = "rv_function"
OUTPUTS = [
    PhenotypeSpec("RVEDV", "mL", "RV end-diastolic volume (at the LV's ED frame)"),
    PhenotypeSpec("RVESV", "mL", "RV end-systolic volume (at the LV's ES frame)"),
    PhenotypeSpec("RVSV", "mL", "RV stroke volume, RVEDV - RVESV"),
    PhenotypeSpec("RVEF", "%", "RV ejection fraction, 100 RVSV / RVEDV"),
    PhenotypeSpec("RVEDVi", "mL/m2", "RVEDV / BSA (Mosteller)"),
    PhenotypeSpec("RVESVi", "mL/m2", "RVESV / BSA (Mosteller)"),
    PhenotypeSpec("RVSVi", "mL/m2", "RVSV / BSA (Mosteller)"),
]


def compute(ctx: SubjectContext) -> dict[str, float]:
    edv = ctx.label_volume(RV_CAVITY, ctx.ed_frame)
    esv = ctx.label_volume(RV_CAVITY, ctx.es_frame)
    bsa = ctx.bsa_m2
    explain_missing_covariates(ctx, ["RVEDVi", "RVESVi", "RVSVi"])
    return {
        "RVEDV": edv,
        "RVESV": esv,
        "RVSV": edv - esv,
        "RVEF": ejection_fraction(edv, esv),
        "RVEDVi": edv / bsa,
        "RVESVi": esv / bsa,
        "RVSVi": (edv - esv) / bsa,
    }
