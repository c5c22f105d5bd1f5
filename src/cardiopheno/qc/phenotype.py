"""Phenotype checks: physiological ranges, LV/RV stroke-volume agreement (per subject) and robust
cohort outliers (median/MAD over QC-passed subjects; run in the merge step, which sees everyone).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from cardiopheno.qc.checks import CheckResult, QCThresholds

MAD_TO_SD = 1.4826  # MAD of a normal distribution x 1.4826 = its SD


def why_missing(name: str, notes: str) -> str:
    """The reason ``phenotypes_notes`` gives for ``name`` ("LVESV, LVEF: <reason>; ..."), or ""."""
    for part in str(notes or "").split("; "):
        names, _, reason = part.partition(": ")
        if reason and name in names.split(", "):
            return reason
    return ""


def check_phenotypes(values: Mapping[str, float], th: QCThresholds) -> list[CheckResult]:
    out = []
    problems = []
    for name, (lo, hi) in th.ranges.items():
        v = values.get(name, math.nan)
        try:
            v = float(v)
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v):
            why = why_missing(name, values.get("phenotypes_notes", ""))
            problems.append(f"{name} missing ({why})" if why else f"{name} missing")
        elif not lo <= v <= hi:
            problems.append(f"{name} {v:.1f} outside [{lo:g}, {hi:g}]")
    out.append(CheckResult("pheno_ranges", not problems, "; ".join(problems)))

    lv, rv = float(values.get("LVSV", math.nan)), float(values.get("RVSV", math.nan))
    if not (math.isfinite(lv) and math.isfinite(rv)):
        out.append(CheckResult.skipped("pheno_sv_agreement", "LVSV or RVSV missing"))
    else:
        diff = abs(lv - rv)
        rel = diff / max((abs(lv) + abs(rv)) / 2, 1e-9)
        bad = diff > th.sv_max_abs_diff_ml and rel > th.sv_max_rel_diff
        reason = f"LVSV {lv:.0f} mL vs RVSV {rv:.0f} mL differ by {diff:.0f} mL ({100 * rel:.0f}%)"
        out.append(CheckResult("pheno_sv_agreement", not bad, reason if bad else ""))
    return out


def check_strain(values: Mapping[str, float], th: QCThresholds) -> CheckResult:
    """Tracking agreement at ES and plausibility of the strain values (advisory check)."""

    def num(name: str) -> float:
        try:
            return float(values.get(name, math.nan))
        except (TypeError, ValueError):
            return math.nan

    ecc, err = num("Ecc_global"), num("Err_global")
    if not math.isfinite(ecc):
        notes = str(values.get("phenotypes_notes", "") or "")
        why = "; ".join(n for n in notes.split("; ") if n.startswith("strain")) or "no strain"
        return CheckResult.skipped("strain_tracking", why)
    problems = []
    dice, dist = num("qc_strain_es_dice"), num("qc_strain_es_contour_mm")
    if not math.isfinite(dice):
        problems.append("no ES myocardium to check the tracking against")
    elif dice < th.strain_min_es_dice:
        problems.append(
            f"ED myocardium tracked to ES has Dice {dice:.2f} < {th.strain_min_es_dice:g}"
        )
    if math.isfinite(dist) and dist > th.strain_max_es_contour_mm:
        problems.append(
            f"tracked contours {dist:.1f} mm from the ES segmentation "
            f"(> {th.strain_max_es_contour_mm:g})"
        )
    if ecc > th.strain_max_global_ecc:
        problems.append(f"global Ecc {ecc:.1f} % > {th.strain_max_global_ecc:g}")
    errs = [num(f"Err_AHA_{k}") for k in range(1, 17)] + [err]
    worst = max((abs(e) for e in errs if math.isfinite(e)), default=0.0)
    if worst > th.strain_max_abs_err:
        problems.append(f"|Err| {worst:.0f} % > {th.strain_max_abs_err:g}")
    if problems:
        return CheckResult.fail("strain_tracking", "; ".join(problems))
    return CheckResult.ok("strain_tracking")


def robust_outliers(
    pheno: pd.DataFrame, reference: pd.Series, th: QCThresholds
) -> tuple[pd.Series, pd.Series]:
    """Flag subjects with |x - median| / (1.4826 MAD) > outlier_z on any of ``outlier_idps``.

    Median and MAD come from the rows where ``reference`` is True (QC-passed subjects). Returns
    (passed bool Series, reason str Series) indexed like ``pheno``.
    """
    passed = pd.Series(True, index=pheno.index)
    reasons = pd.Series("", index=pheno.index, dtype=object)
    for name in th.outlier_idps:
        if name not in pheno.columns:
            continue
        x = pheno[name].astype(float)
        ref = x[reference.astype(bool)].dropna()
        if len(ref) < 10:  # too few to estimate a spread
            continue
        med = float(np.median(ref))
        sd = MAD_TO_SD * float(np.median(np.abs(ref - med)))
        if sd <= 0:
            continue
        z = (x - med) / sd
        bad = z.abs() > th.outlier_z
        for i in pheno.index[bad.fillna(False).to_numpy()]:
            passed[i] = False
            text = f"{name} {x[i]:.1f} is {z[i]:+.1f} robust SD from the cohort median {med:.1f}"
            reasons[i] = f"{reasons[i]}; {text}" if reasons[i] else text
    return passed, reasons
