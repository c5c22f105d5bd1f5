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
            problems.append(f"{name} missing")
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
