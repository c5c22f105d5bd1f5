"""The synthetic population: covariates and the true imaging-derived phenotypes (IDPs).

Tables only, no images, vectorised, so 30,000 subjects take well under a second.

Model (documented again in the cohort's truth/README.md, see :func:`population_model_markdown`):

* Covariates: sex ~ Bernoulli(0.48) (1 male); age = 45 + 35 Beta(2.3, 2.0) years (mean 63.7,
  SD 7.6, as in the UK Biobank imaging visit); height and weight by sex (weight log-normal,
  allometric in height); BSA by Mosteller, sqrt(height_cm * weight_kg / 3600); heart rate, blood
  pressure; imaging date uniform over 2014-05-01 .. 2020-03-01.
* Base IDPs (pathology-free): ``y = intercept + b_age * age + b_sex * sex + b_bsa * bsa_m2 + e``,
  e ~ N(0, sd_female or sd_male), with the RV residuals correlated with the LV ones
  (rho 0.85 for EDV, 0.7 for EF: without shunts or regurgitation both ventricles eject the same
  stroke volume, so LVSV and RVSV differ by about 11 mL SD, as QC's agreement check expects).  The coefficients in :data:`BASE_COEFFICIENTS` were calibrated so
  that, in pathology-free subjects, the sex-specific means and SDs match the UK Biobank reference
  ranges of Petersen et al., JCMR 2017;19:18 (:data:`PUBLISHED_REFERENCE`).  Derived IDPs:
  ESV = EDV (1 - EF/100), SV = EDV - ESV.
* Pathology (about 10 %), applied after the linear model, so the association coefficients hold for
  ``pathology == "none"`` only: dilated (4 %: EDV x 1.4-1.8, EF ~ N(32, 7), LVM x 1.25, RVEDV x 1.2,
  RVEF - 8), hypertrophic (3 %: LVM x 1.4-1.9, EDV x 0.9, EF + 4), low_ef (3 %: EF ~ N(40, 5)).
  In pathology the RV follows the LV's output: RVEF is reset so that RVSV = LVSV (1 + N(0, 0.08)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EID_START = 1000001
IMAGING_START = np.datetime64("2014-05-01")
IMAGING_END = np.datetime64("2020-03-01")
MYOCARDIAL_DENSITY_G_PER_ML = 1.05
# Correlation of the RV residuals with the LV's (stroke volumes of the two ventricles agree).
RHO_RV_EDV, RHO_RV_EF = 0.85, 0.7

PATHOLOGIES = ("none", "dilated", "hypertrophic", "low_ef")
PATHOLOGY_PROBABILITIES = (0.90, 0.04, 0.03, 0.03)

# Linear model of the pathology-free IDPs: per unit of each term (age in years, sex 1 = male,
# bsa_m2 in m2). Calibrated numerically (intercept, sex and residual SDs solved so that indexed
# sex-specific means and SDs hit PUBLISHED_REFERENCE over this module's covariate distribution).
BASE_COEFFICIENTS: dict[str, dict[str, float]] = {
    "LVEDV": {"intercept": 53.5, "age": -0.45, "sex": 19.25, "bsa_m2": 60.0},
    "LVEF": {"intercept": 59.85, "age": 0.06, "sex": -2.65, "bsa_m2": -1.5},
    "LVM": {"intercept": 4.25, "age": -0.15, "sex": 21.33, "bsa_m2": 45.0},
    "RVEDV": {"intercept": 70.87, "age": -0.75, "sex": 33.04, "bsa_m2": 65.0},
    "RVEF": {"intercept": 55.69, "age": 0.08, "sex": -2.76, "bsa_m2": -1.0},
}
RESIDUAL_SD: dict[str, tuple[float, float]] = {  # (female, male)
    "LVEDV": (19.0, 25.44),
    "LVEF": (4.97, 4.97),
    "LVM": (12.29, 17.87),
    "RVEDV": (20.33, 29.01),
    "RVEF": (5.97, 5.97),
}
UNITS = {"LVEDV": "mL", "LVEF": "%", "LVM": "g", "RVEDV": "mL", "RVEF": "%"}
TERM_UNITS = {"intercept": "", "age": "per year", "sex": "male vs female", "bsa_m2": "per m2"}

# Petersen et al. JCMR 2017 (UK Biobank, healthy Caucasians): sex-specific mean and SD.
# Keys: IDP name (indexed by BSA where the name ends in i) -> {sex: (mean, sd)}, sex 1 male.
PUBLISHED_REFERENCE: dict[str, dict[int, tuple[float, float]]] = {
    "LVEDVi": {1: (82.0, 13.0), 0: (74.0, 11.0)},
    "LVMi": {1: (53.0, 9.0), 0: (42.0, 7.0)},
    "RVEDVi": {1: (93.0, 15.0), 0: (78.0, 12.0)},
    "LVEF": {1: (58.0, 5.0), 0: (61.0, 5.0)},
    "RVEF": {1: (56.0, 6.0), 0: (59.0, 6.0)},
}

TRUE_IDPS = ("LVEDV", "LVESV", "LVSV", "LVEF", "LVM", "RVEDV", "RVESV", "RVSV", "RVEF")


def _covariates(n: int, rng: np.random.Generator) -> pd.DataFrame:
    sex = (rng.random(n) < 0.48).astype(np.int64)
    age = 45.0 + 35.0 * rng.beta(2.3, 2.0, n)
    male = sex == 1
    mean_height = np.where(male, 176.0, 163.0)
    height = mean_height - 0.1 * (age - 63.0) + rng.standard_normal(n) * np.where(male, 6.8, 6.2)
    median_weight = np.where(male, 83.0, 70.0)
    weight = np.exp(
        np.log(median_weight) + 1.5 * np.log(height / mean_height) + rng.normal(0.0, 0.15, n)
    )
    heart_rate = np.clip(rng.normal(64.0 + 3.0 * (1 - sex), 10.0), 45.0, 100.0)
    sbp = np.clip(138.0 + 0.6 * (age - 63.0) + 4.0 * sex + rng.normal(0.0, 18.0, n), 90.0, 220.0)
    dbp = np.clip(18.0 + 0.45 * sbp + rng.normal(0.0, 7.0, n), 45.0, 130.0)
    span = int((IMAGING_END - IMAGING_START).astype(int))
    days = rng.integers(0, span, n)
    imaging_date = IMAGING_START + days.astype("timedelta64[D]")
    return pd.DataFrame(
        {
            "eid": [str(EID_START + i) for i in range(n)],
            "age": np.round(age, 1),
            "sex": sex,
            "height_cm": np.round(height, 1),
            "weight_kg": np.round(weight, 1),
            "bsa_m2": np.sqrt(np.round(height, 1) * np.round(weight, 1) / 3600.0),
            "sbp": np.round(sbp),
            "dbp": np.round(dbp),
            "heart_rate": np.round(heart_rate, 1),
            "imaging_date": pd.to_datetime(imaging_date),
        }
    )


def _linear(name: str, cov: pd.DataFrame, z: np.ndarray) -> np.ndarray:
    b = BASE_COEFFICIENTS[name]
    sd_f, sd_m = RESIDUAL_SD[name]
    sd = np.where(cov["sex"].to_numpy() == 1, sd_m, sd_f)
    return (
        b["intercept"]
        + b["age"] * cov["age"].to_numpy()
        + b["sex"] * cov["sex"].to_numpy()
        + b["bsa_m2"] * cov["bsa_m2"].to_numpy()
        + sd * z
    )


def sample_population(n: int, seed: int) -> pd.DataFrame:
    """One row per subject: covariates, pathology and the true IDPs (mL, %, g)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng([seed, 0x5EED])
    cov = _covariates(n, rng)
    z = rng.standard_normal((5, n))
    z_rv_edv = RHO_RV_EDV * z[0] + np.sqrt(1 - RHO_RV_EDV**2) * z[3]
    z_rv_ef = RHO_RV_EF * z[1] + np.sqrt(1 - RHO_RV_EF**2) * z[4]
    lvedv = _linear("LVEDV", cov, z[0])
    lvef = _linear("LVEF", cov, z[1])
    lvm = _linear("LVM", cov, z[2])
    rvedv = _linear("RVEDV", cov, z_rv_edv)
    rvef = _linear("RVEF", cov, z_rv_ef)

    pathology = rng.choice(len(PATHOLOGIES), size=n, p=PATHOLOGY_PROBABILITIES)
    u = rng.random(n)
    g = rng.standard_normal(n)
    dil, hyp, low = pathology == 1, pathology == 2, pathology == 3
    lvedv = np.where(dil, lvedv * (1.4 + 0.4 * u), lvedv)
    lvef = np.where(dil, np.clip(32.0 + 7.0 * g, 15.0, 45.0), lvef)
    lvm = np.where(dil, lvm * 1.25, lvm)
    rvedv = np.where(dil, rvedv * 1.2, rvedv)
    rvef = np.where(dil, rvef - 8.0, rvef)
    lvm = np.where(hyp, lvm * (1.4 + 0.5 * u), lvm)
    lvedv = np.where(hyp, lvedv * 0.9, lvedv)
    lvef = np.where(hyp, np.minimum(lvef + 4.0, 78.0), lvef)
    lvef = np.where(low, np.clip(40.0 + 5.0 * g, 25.0, 48.0), lvef)

    # Flow is conserved: a sick LV's stroke volume is the RV's too (within 8 %).
    sick = pathology != 0
    lvsv = lvedv * lvef / 100.0
    matched_rvef = 100.0 * lvsv * (1.0 + 0.08 * rng.standard_normal(n)) / rvedv
    rvef = np.where(sick, matched_rvef, rvef)

    # Physiological bounds (far outside the healthy ranges, so they leave the linear model intact).
    lvedv = np.clip(lvedv, 50.0, 400.0)
    rvedv = np.clip(rvedv, 50.0, 400.0)
    lvm = np.clip(lvm, 40.0, 300.0)
    lvef = np.clip(lvef, 15.0, 80.0)
    rvef = np.clip(rvef, 20.0, 80.0)

    out = cov.assign(pathology=np.asarray(PATHOLOGIES)[pathology])
    out["LVEDV"] = lvedv
    out["LVESV"] = lvedv * (1.0 - lvef / 100.0)
    out["LVSV"] = lvedv - out["LVESV"]
    out["LVEF"] = lvef
    out["LVM"] = lvm
    out["RVEDV"] = rvedv
    out["RVESV"] = rvedv * (1.0 - rvef / 100.0)
    out["RVSV"] = rvedv - out["RVESV"]
    out["RVEF"] = rvef
    return out


def association_effects() -> pd.DataFrame:
    """The true linear coefficients as rows of truth/effects.parquet (analysis "association")."""
    rows = []
    for idp, terms in BASE_COEFFICIENTS.items():
        for term, estimate in terms.items():
            rows.append(
                {
                    "analysis": "association",
                    "idp": idp,
                    "term": term,
                    "estimate": float(estimate),
                    "scale": f"{UNITS[idp]} {TERM_UNITS[term]}".strip(),
                    "description": (
                        f"OLS coefficient of {idp} on age, sex, bsa_m2 in pathology-free subjects "
                        "(pathology == 'none'); residual SD female/male "
                        f"{RESIDUAL_SD[idp][0]}/{RESIDUAL_SD[idp][1]} {UNITS[idp]}"
                    ),
                }
            )
    return pd.DataFrame(rows)


def population_model_markdown() -> str:
    """The population model with its parameters, for truth/README.md."""
    lines = [
        "## Population model (`cardiopheno.synth.population`)",
        "",
        "Covariates: sex ~ Bernoulli(0.48) (1 = male); age = 45 + 35 Beta(2.3, 2.0) years; height",
        "N(176 | 163, 6.8 | 6.2) cm minus 0.1 cm/year over 63; weight log-normal, median 83 | 70 kg,",
        "allometric exponent 1.5 on height, log-SD 0.15; BSA (Mosteller) = sqrt(height_cm * weight_kg",
        "/ 3600) m2; heart rate N(64 + 3 female, 10) bpm clipped to 45-100; SBP, DBP in mmHg; imaging",
        f"date uniform over {IMAGING_START} .. {IMAGING_END}.",
        "",
        "Pathology-free IDPs: `y = intercept + b_age*age + b_sex*sex + b_bsa*bsa_m2 + e`, with",
        f"e ~ N(0, sd_female | sd_male); RVEDV residual correlated {RHO_RV_EDV} with LVEDV's, RVEF's {RHO_RV_EF} with",
        "LVEF's. LVESV = LVEDV (1 - LVEF/100), LVSV = LVEDV - LVESV (likewise RV). These linear",
        "coefficients hold for subjects with `pathology == 'none'` only; fit them on that subset.",
        "",
        "| IDP | intercept | age (/year) | sex (male) | bsa_m2 (/m2) | SD female | SD male |",
        "|---|---|---|---|---|---|---|",
    ]
    for idp, b in BASE_COEFFICIENTS.items():
        sd_f, sd_m = RESIDUAL_SD[idp]
        lines.append(
            f"| {idp} ({UNITS[idp]}) | {b['intercept']} | {b['age']} | {b['sex']} | "
            f"{b['bsa_m2']} | {sd_f} | {sd_m} |"
        )
    lines += [
        "",
        "Calibrated so that pathology-free subjects match Petersen et al. JCMR 2017 (UK Biobank",
        "reference ranges), mean +- SD, male | female:",
        "",
    ]
    for idp, ref in PUBLISHED_REFERENCE.items():
        lines.append(f"- {idp}: {ref[1][0]} +- {ref[1][1]} | {ref[0][0]} +- {ref[0][1]}")
    lines += [
        "",
        "Pathology (applied after the linear model): none 90 %; dilated 4 % (EDV x U(1.4, 1.8),",
        "LVEF ~ N(32, 7) clipped 15-45, LVM x 1.25, RVEDV x 1.2, RVEF - 8); hypertrophic 3 %",
        "(LVM x U(1.4, 1.9), EDV x 0.9, LVEF + 4); low_ef 3 % (LVEF ~ N(40, 5) clipped 25-48).",
        "In every pathology RVEF is then reset so that RVSV = LVSV (1 + N(0, 0.08)) (flow conservation).",
        "Bounds: EDV 50-400 mL, LVM 40-300 g, LVEF 15-80 %, RVEF 20-80 %.",
        "",
    ]
    return "\n".join(lines)
