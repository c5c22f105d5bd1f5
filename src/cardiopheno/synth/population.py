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
* Central pressure and the aorta (:func:`aorta_truth`, its own random stream so the columns above
  do not change): ``central_pp`` (mmHg), the central (aortic) pulse pressure that UK Biobank's
  Vicorder pulse-wave analysis reports (field 12678), is the brachial pulse pressure sbp - dbp
  divided by an age-dependent amplification; ascending (AAo) and proximal descending (DAo) aortic
  diastolic areas grow with age, BSA and male sex; their distensibility falls linearly with age
  (:data:`AORTA_COEFFICIENTS`), with a residual proportional to the mean, and sets each
  vessel's systolic area: A_max = A_min (1 + D x central_pp / 1000).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EID_START = 1000001
IMAGING_START = np.datetime64("2014-05-01")
IMAGING_END = np.datetime64("2020-03-01")
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

# Pulse-pressure amplification (brachial PP / central PP): about 1.35 at 45 years falling to
# about 1.17 at 75, a little higher in men and at faster heart rates (McEniery et al., JACC
# 2005;46:1753, ACCT; Vicorder's transfer function keeps DBP and lowers SBP, as the anchor's
# aortic/eval_aortic_area.py notes). Per unit: age in years, sex 1 male, heart rate in bpm.
PP_AMPLIFICATION = {"at_45": 1.35, "age": -0.006, "sex": 0.04, "heart_rate": 0.002, "sd": 0.05}
MIN_AMPLIFICATION = 1.02
# Aortic distensibility D in 10^-3 mmHg^-1: D = intercept + age x (age - 45) + sex x male, times
# (1 + CV z) (z ~ N(0, 1) clipped to +-3, so the mean stays linear and D stays positive). The
# ascending aorta's falls from about 6 at 45 years to about 2 at 75 (Redheuil et al.,
# Hypertension 2010;55:319: -13.6 kPa^-1 1e-3 = -1.8 1e-3 mmHg^-1 per decade, steepest before
# 50; Nethononda et al., JCMR 2015;17:20: -1.1 to -1.3 per decade at the ascending aorta, -1.0 to
# -1.2 at the proximal descending aorta, which stays more distensible). The sex term is small
# and assumed (Nethononda: women start higher and fall faster, so it averages out over 45-80).
AORTA_COEFFICIENTS: dict[str, dict[str, float]] = {
    "AAo_distensibility": {"intercept": 6.0, "age": -0.13, "sex": -0.3, "cv": 0.25},
    "DAo_distensibility": {"intercept": 7.0, "age": -0.11, "sex": -0.3, "cv": 0.25},
}
AORTA_AGE_CENTRE = 45.0
RHO_AORTA = 0.6  # correlation of the AAo and DAo distensibility residuals (one arterial tree)
# Diastolic (minimum) lumen diameter in mm at the pulmonary-trunk level: intercept at 63 years
# and BSA 1.9 m2, per year, per m2, male vs female, residual SD, and bounds (ascending ~28-36
# mm, descending ~20-26 mm, growing with age and body size: the CMR nomogram of Davis et al.,
# JCMR 2014; the UK Biobank aortic study of Bai et al., Nature Medicine 2020).
AORTA_DIAMETER_MM: dict[str, dict[str, float]] = {
    "AAo": {"intercept": 30.5, "age": 0.12, "bsa_m2": 5.0, "sex": 1.0, "sd": 2.5, "lo": 22.0,
            "hi": 45.0},
    "DAo": {"intercept": 22.5, "age": 0.08, "bsa_m2": 3.0, "sex": 0.8, "sd": 1.8, "lo": 16.0,
            "hi": 34.0},
}  # fmt: skip
AORTA_COLUMNS = (
    "central_pp",
    "AAo_min_area", "AAo_max_area", "AAo_distensibility",
    "DAo_min_area", "DAo_max_area", "DAo_distensibility",
)  # fmt: skip


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
    return pd.concat([out, aorta_truth(out, seed)], axis=1)


def aorta_truth(cov: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Central pulse pressure and the true aortic areas and distensibilities (:data:`AORTA_COLUMNS`).

    Reads age, sex, bsa_m2, sbp, dbp and heart_rate from ``cov``; draws from a stream of its own,
    so adding it left every other column of :func:`sample_population` unchanged.
    """
    n = len(cov)
    rng = np.random.default_rng([seed, 0xA0127A])
    age, sex = cov["age"].to_numpy(float), cov["sex"].to_numpy(float)
    bsa, hr = cov["bsa_m2"].to_numpy(float), cov["heart_rate"].to_numpy(float)
    a = PP_AMPLIFICATION
    amp = (
        a["at_45"]
        + a["age"] * (age - 45.0)
        + a["sex"] * sex
        + a["heart_rate"] * (hr - 64.0)
        + rng.normal(0.0, a["sd"], n)
    )
    brachial_pp = (cov["sbp"] - cov["dbp"]).to_numpy(float)
    central_pp = np.round(brachial_pp / np.maximum(amp, MIN_AMPLIFICATION))
    out = pd.DataFrame({"central_pp": central_pp}, index=cov.index)
    z = rng.standard_normal((2, n))
    z_dist = {"AAo": z[0], "DAo": RHO_AORTA * z[0] + np.sqrt(1 - RHO_AORTA**2) * z[1]}
    for vessel, zd in z_dist.items():
        d = AORTA_DIAMETER_MM[vessel]
        diameter = np.clip(
            d["intercept"]
            + d["age"] * (age - 63.0)
            + d["bsa_m2"] * (bsa - 1.9)
            + d["sex"] * sex
            + rng.normal(0.0, d["sd"], n),
            d["lo"],
            d["hi"],
        )
        b = AORTA_COEFFICIENTS[f"{vessel}_distensibility"]
        mean = b["intercept"] + b["age"] * (age - AORTA_AGE_CENTRE) + b["sex"] * sex
        dist = mean * (1.0 + b["cv"] * np.clip(zd, -3.0, 3.0))
        a_min = np.pi * diameter**2 / 4.0
        out[f"{vessel}_min_area"] = a_min
        out[f"{vessel}_max_area"] = a_min * (1.0 + dist * central_pp / 1000.0)
        out[f"{vessel}_distensibility"] = dist
    return out[list(AORTA_COLUMNS)]


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
    for idp, b in AORTA_COEFFICIENTS.items():  # every subject; the intercept at age 0
        at_zero = b["intercept"] - b["age"] * AORTA_AGE_CENTRE
        for term, estimate in (("intercept", at_zero), ("age", b["age"]), ("sex", b["sex"])):
            rows.append(
                {
                    "analysis": "association",
                    "idp": idp,
                    "term": term,
                    "estimate": float(estimate),
                    "scale": f"10-3/mmHg {TERM_UNITS[term]}".strip(),
                    "description": (
                        f"mean of {idp} on age and sex in all subjects (no BSA term); residual "
                        f"proportional to the mean, coefficient of variation {b['cv']}"
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
        "Central pulse pressure and the aorta (`aorta_truth`): central_pp = round((sbp - dbp) / amp)",
        "mmHg, amp = {at_45} {age:+} (age - 45) {sex:+} male {heart_rate:+} (HR - 64) + N(0, {sd}),".format(
            **PP_AMPLIFICATION
        ),
        f"at least {MIN_AMPLIFICATION}. Diastolic lumen diameter (mm) = intercept + b_age (age - 63) +",
        "b_bsa (bsa_m2 - 1.9) + b_sex male + N(0, sd), clipped; A_min = pi d^2 / 4 mm2.",
        f"Distensibility (1e-3/mmHg) = (intercept + b_age (age - {AORTA_AGE_CENTRE:g}) + b_sex male)",
        f"x (1 + cv z), z ~ N(0, 1) clipped to +-3 (AAo and DAo z correlated {RHO_AORTA}); so an OLS",
        "of distensibility on age and sex recovers b_age and b_sex. A_max = A_min (1 + D central_pp /",
        "1000).",
        "",
        "| vessel | diameter intercept | /year | /m2 | male | SD | bounds |",
        "|---|---|---|---|---|---|---|",
    ]
    for vessel, d in AORTA_DIAMETER_MM.items():
        lines.append(
            f"| {vessel} | {d['intercept']} | {d['age']} | {d['bsa_m2']} | {d['sex']} | {d['sd']} "
            f"| {d['lo']}-{d['hi']} |"
        )
    lines += [
        "",
        "| distensibility | intercept (age 45, female) | /year | male | cv |",
        "|---|---|---|---|---|",
    ]
    for name, b in AORTA_COEFFICIENTS.items():
        lines.append(f"| {name} | {b['intercept']} | {b['age']} | {b['sex']} | {b['cv']} |")
    lines.append("")
    return "\n".join(lines)
