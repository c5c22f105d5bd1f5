"""Recovery of the synthetic cohort's programmed effects by the statistics stages.

Checks (``cardiopheno.synth`` ground truth, ``Outcomes.effects``):

- association: the 95 % CI of the age and sex coefficients covers the true values (fitted in
  pathology-free subjects, as the truth is stated; the truth has no age x sex interaction, so the
  women's age slope and the sex difference at any centring age are the true age and sex terms);
- PheWAS: every programmed (IDP, ICD-10 code) effect is found at BH q < 0.05 on the phecodes the
  code maps to; among tests on phecodes unrelated to any programmed code, at most 5 % are
  significant (false discoveries among unrelated phecodes); the false-discovery proportion
  (unrelated significant tests over all significant tests) is reported beside it; the true
  log-OR lies inside the 95 % CI;
- survival: the true log-HR per SD lies inside the Cox 95 % CI.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cardiopheno.stats.phecodes import PhecodeMap, map_diagnoses


def association_recovery(assoc: pd.DataFrame, effects: pd.DataFrame) -> pd.DataFrame:
    truth = effects[(effects["analysis"] == "association") & effects["term"].isin(["age", "sex"])]
    m = truth.merge(assoc, on=["idp", "term"], suffixes=("_true", ""))
    m["covered"] = (m["ci_low"] <= m["estimate_true"]) & (m["estimate_true"] <= m["ci_high"])
    return m[["idp", "term", "estimate_true", "estimate", "ci_low", "ci_high", "covered"]]


def related_phecodes(codes: list[str], pmap: PhecodeMap) -> dict[str, set[str]]:
    """Phecodes each ICD-10 code maps to (with its parents), by the same lookup as the PheWAS."""
    diag = pd.DataFrame({"eid": [str(i) for i in range(len(codes))], "icd10": codes, "date": ""})
    counts = map_diagnoses(diag, pmap)
    return {
        code: set(counts.loc[counts["eid"] == str(i), "phecode"]) for i, code in enumerate(codes)
    }


def phewas_recovery(
    phewas: pd.DataFrame,
    effects: pd.DataFrame,
    pmap: PhecodeMap,
    extra_codes: list[str] = (),
    q_threshold: float = 0.05,
) -> tuple[pd.DataFrame, dict]:
    """Per programmed effect: best matching test; plus the false-discovery summary.

    ``extra_codes``: further ICD-10 codes whose phecodes depend on IDPs through other parts of the
    generator (for example incident heart failure I50 of the survival model), so they are neither
    programmed PheWAS effects nor unrelated.
    """
    truth = effects[(effects["analysis"] == "phewas") & ~effects["idp"].isin(["age", "sex"])]
    truth = truth.assign(icd10=truth["term"].str.removeprefix("icd10:"))
    rel = related_phecodes(sorted(set(truth["icd10"]) | set(extra_codes)), pmap)
    rows = []
    for _, t in truth.iterrows():
        tests = phewas[(phewas["idp"] == t["idp"]) & phewas["phecode"].isin(rel[t["icd10"]])]
        if tests.empty:
            rows.append({"idp": t["idp"], "icd10": t["icd10"], "found": False})
            continue
        best = tests.sort_values("p").iloc[0]
        rows.append(
            {
                "idp": t["idp"],
                "icd10": t["icd10"],
                "phecode": best["phecode"],
                "estimate_true": t["estimate"],
                "estimate": best["estimate"],
                "ci_low": best["ci_low"],
                "ci_high": best["ci_high"],
                "q_bh": best["q_bh"],
                "found": bool(best["q_bh"] < q_threshold),
                "covered": bool(best["ci_low"] <= t["estimate"] <= best["ci_high"]),
            }
        )
    related = set().union(*rel.values()) if rel else set()
    sig = phewas[phewas["q_bh"] < q_threshold]
    unrelated_sig = sig[~sig["phecode"].isin(related)]
    summary = {
        "tests": len(phewas),
        "significant": len(sig),
        "significant_unrelated": len(unrelated_sig),
        "false_discovery_proportion": len(unrelated_sig) / max(len(sig), 1),
        "unrelated_tests": int((~phewas["phecode"].isin(related)).sum()),
        "unrelated_false_positive_rate": len(unrelated_sig)
        / max(int((~phewas["phecode"].isin(related)).sum()), 1),
    }
    return pd.DataFrame(rows), summary


def survival_recovery(cox: pd.DataFrame, effects: pd.DataFrame) -> pd.DataFrame:
    truth = effects[(effects["analysis"] == "survival") & ~effects["idp"].isin(["age", "sex"])]
    truth = truth.assign(outcome=truth["term"].str.removeprefix("outcome:"))
    m = truth.merge(cox, on=["idp", "outcome"], suffixes=("_true", ""))
    m["covered"] = (m["ci_low"] <= m["estimate_true"]) & (m["estimate_true"] <= m["ci_high"])
    m["hazard_ratio_true"] = np.exp(m["estimate_true"])
    return m[
        ["idp", "outcome", "estimate_true", "estimate", "ci_low", "ci_high", "hazard_ratio_true",
         "hazard_ratio", "n_events", "covered"]
    ]  # fmt: skip
