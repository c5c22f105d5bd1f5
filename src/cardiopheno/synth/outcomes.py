"""Synthetic diagnoses and deaths, a few of which depend on the true IDPs by a stated model.

Vectorised over subjects: 30,000 subjects take about a second.

* IDP-linked codes ("ever diagnosed", logistic; :data:`LOGISTIC_OUTCOMES`): I10 hypertension and
  E11 type 2 diabetes on the LVM z-score, I48 atrial fibrillation on the LVEDV z-score, each
  adjusted for age and sex.  z = (x - cohort mean) / cohort SD (ddof 1) over the population passed
  in.  A positive case gets one date, before imaging with probability ``p_prevalent`` (up to 15
  years before), otherwise uniform between imaging and death or the end of follow-up.
* Survival (exponential, i.e. Cox proportional hazards with a constant baseline;
  :data:`SURVIVAL_OUTCOMES`), time from imaging_date: all-cause death on the LVEF z-score, age and
  sex; 30 % of deaths are cardiovascular, independently of covariates, so the cardiovascular
  cause-specific hazard has the same log-HRs.  Incident heart failure (first I50 in diagnoses)
  on the LVEF z-score, age and sex, censored by death.  A cardiovascular death has underlying
  cause I50 (with probability 0.7) only if the subject had incident heart failure before;
  otherwise I21 or I63.  So "heart failure" read as I50 in diagnoses or deaths gives the same events.
* Every other code (:data:`BACKGROUND_CODES`) depends on age and sex only (logit linear in age per
  decade), so after adjusting for age and sex it is independent of every IDP.

Follow-up ends on :data:`END_OF_FOLLOW_UP` (administrative censoring).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

END_OF_FOLLOW_UP = np.datetime64("2024-12-31")
DAYS_PER_YEAR = 365.25
PREVALENT_WINDOW_YEARS = 15.0
AGE_CENTRE = 63.0


@dataclass(frozen=True)
class LogisticOutcome:
    icd10: str
    name: str
    idp: str
    log_or_per_sd: float
    intercept: float
    age_per_year: float
    sex_male: float
    p_prevalent: float


@dataclass(frozen=True)
class SurvivalOutcome:
    name: str
    idp: str
    log_hr_per_sd: float
    baseline_hazard_per_year: float
    age_per_year: float
    sex_male: float
    definition: str


LOGISTIC_OUTCOMES = (
    LogisticOutcome("I10", "essential hypertension", "LVM", 0.5, -1.25, 0.04, 0.3, 0.65),
    LogisticOutcome("E11", "type 2 diabetes", "LVM", 0.35, -2.95, 0.03, 0.4, 0.6),
    LogisticOutcome("I48", "atrial fibrillation", "LVEDV", 0.45, -3.35, 0.07, 0.5, 0.4),
)

ALL_CAUSE_DEATH = SurvivalOutcome(
    "all_cause_death",
    "LVEF",
    -0.35,
    0.0075,
    0.08,
    0.35,
    "any death in deaths.csv",
)
CV_DEATH_FRACTION = 0.30
CV_DEATH = SurvivalOutcome(
    "cv_death",
    "LVEF",
    ALL_CAUSE_DEATH.log_hr_per_sd,
    ALL_CAUSE_DEATH.baseline_hazard_per_year * CV_DEATH_FRACTION,
    ALL_CAUSE_DEATH.age_per_year,
    ALL_CAUSE_DEATH.sex_male,
    "death with underlying cause I21, I50 or I63 (cause-specific hazard; other deaths censor)",
)
HEART_FAILURE = SurvivalOutcome(
    "heart_failure",
    "LVEF",
    -0.6,
    0.0035,
    0.05,
    0.4,
    "first I50 in diagnoses.csv after imaging (no prevalent I50 is generated); death censors",
)
SURVIVAL_OUTCOMES = (HEART_FAILURE, CV_DEATH, ALL_CAUSE_DEATH)
CV_DEATH_CODES = ("I21", "I50", "I63")

# (code, description, prevalence at age 63 in the allowed sex, log-OR per decade of age,
#  log-OR male vs female, sex restriction: None, 0 female only, 1 male only)
BACKGROUND_CODES: tuple[tuple[str, str, float, float, float, int | None], ...] = (
    ("K21", "gastro-oesophageal reflux", 0.12, 0.1, 0.0, None),
    ("M17", "knee osteoarthritis", 0.10, 0.5, -0.2, None),
    ("J45", "asthma", 0.11, -0.1, -0.2, None),
    ("H25", "senile cataract", 0.12, 0.9, -0.1, None),
    ("E78", "disorders of lipoprotein metabolism", 0.15, 0.3, 0.3, None),
    ("K57", "diverticular disease", 0.08, 0.5, -0.1, None),
    ("M54", "dorsalgia", 0.18, 0.0, -0.1, None),
    ("K80", "cholelithiasis", 0.05, 0.3, -0.5, None),
    ("E03", "hypothyroidism", 0.05, 0.2, -1.2, None),
    ("M81", "osteoporosis", 0.04, 0.8, -1.5, None),
    ("J30", "allergic rhinitis", 0.06, -0.3, 0.0, None),
    ("L40", "psoriasis", 0.02, 0.0, 0.1, None),
    ("K44", "diaphragmatic hernia", 0.07, 0.4, -0.2, None),
    ("I83", "varicose veins", 0.04, 0.3, -0.4, None),
    ("H40", "glaucoma", 0.03, 0.6, 0.1, None),
    ("G47", "sleep disorders", 0.04, 0.1, 0.5, None),
    ("F32", "depressive episode", 0.08, -0.2, -0.5, None),
    ("F41", "anxiety disorders", 0.06, -0.2, -0.5, None),
    ("K29", "gastritis and duodenitis", 0.06, 0.2, 0.0, None),
    ("D12", "benign neoplasm of colon", 0.06, 0.4, 0.4, None),
    ("M19", "other arthrosis", 0.06, 0.5, -0.3, None),
    ("M25", "other joint disorders", 0.10, 0.1, -0.1, None),
    ("R10", "abdominal and pelvic pain", 0.10, -0.1, -0.4, None),
    ("C44", "other skin neoplasms", 0.05, 0.7, 0.3, None),
    ("N39", "urinary tract disorders", 0.06, 0.4, -0.8, None),
    ("J18", "pneumonia", 0.04, 0.6, 0.2, None),
    ("A09", "gastroenteritis", 0.04, 0.1, 0.0, None),
    ("M79", "soft tissue disorders", 0.07, 0.0, -0.2, None),
    ("K58", "irritable bowel syndrome", 0.04, -0.3, -0.8, None),
    ("N20", "urinary calculus", 0.03, 0.1, 0.6, None),
    ("G43", "migraine", 0.04, -0.5, -1.0, None),
    ("H35", "retinal disorders", 0.03, 0.8, 0.0, None),
    ("N40", "hyperplasia of prostate", 0.15, 0.8, 0.0, 1),
    ("C61", "malignant neoplasm of prostate", 0.04, 0.7, 0.0, 1),
    ("N95", "menopausal disorders", 0.12, -0.3, 0.0, 0),
    ("C50", "malignant neoplasm of breast", 0.05, 0.3, 0.0, 0),
    ("N81", "female genital prolapse", 0.04, 0.4, 0.0, 0),
)

# Underlying causes of non-cardiovascular deaths: (code, weight, sex restriction)
NON_CV_DEATH_CAUSES: tuple[tuple[str, float, int | None], ...] = (
    ("C34", 0.16, None),
    ("C18", 0.08, None),
    ("C25", 0.07, None),
    ("C85", 0.05, None),
    ("C71", 0.04, None),
    ("J44", 0.10, None),
    ("J18", 0.06, None),
    ("G30", 0.08, None),
    ("G20", 0.04, None),
    ("K70", 0.04, None),
    ("C50", 0.10, 0),
    ("C56", 0.05, 0),
    ("C61", 0.10, 1),
)


@dataclass(frozen=True)
class Outcomes:
    """Long tables in the cohort layout plus the true effects that generated them."""

    diagnoses: pd.DataFrame  # eid, icd10, date
    deaths: pd.DataFrame  # eid, date, icd10
    effects: pd.DataFrame  # analysis, idp, term, estimate, scale, description


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = float(np.std(x, ddof=1)) if len(x) > 1 else 1.0
    return (x - float(np.mean(x))) / (sd if sd > 0 else 1.0)


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _to_days(years: np.ndarray) -> np.ndarray:
    return np.round(years * DAYS_PER_YEAR).astype("int64").astype("timedelta64[D]")


def _event_dates(
    rng: np.random.Generator,
    imaging: np.ndarray,
    stop: np.ndarray,
    p_prevalent: float,
) -> np.ndarray:
    """One date per case: before imaging (up to 15 years) or uniform in (imaging, stop]."""
    n = len(imaging)
    prevalent = rng.random(n) < p_prevalent
    before = imaging - np.maximum(
        _to_days(rng.random(n) * PREVALENT_WINDOW_YEARS), np.timedelta64(1, "D")
    )
    span = (stop - imaging).astype("int64")
    after = imaging + np.maximum(1, np.ceil(rng.random(n) * span)).astype("int64").astype(
        "timedelta64[D]"
    )
    after = np.minimum(after, stop)
    return np.where(prevalent | (span <= 0), before, after)


def sample_outcomes(pop: pd.DataFrame, seed: int) -> Outcomes:
    """Diagnoses, deaths and the true effects for the subjects of ``pop`` (sample_population)."""
    from cardiopheno.synth.population import association_effects

    rng = np.random.default_rng([seed, 0x0C0DE])
    n = len(pop)
    eid = pop["eid"].astype(str).to_numpy()
    age = pop["age"].to_numpy(dtype=float)
    sex = pop["sex"].to_numpy(dtype=int)
    imaging = pd.to_datetime(pop["imaging_date"]).to_numpy().astype("datetime64[D]")
    end = np.full(n, END_OF_FOLLOW_UP)
    z = {idp: _zscore(pop[idp].to_numpy(dtype=float)) for idp in ("LVEF", "LVM", "LVEDV")}
    sds = {
        idp: float(np.std(pop[idp].to_numpy(dtype=float), ddof=1)) if n > 1 else 1.0 for idp in z
    }

    def hazard(o: SurvivalOutcome) -> np.ndarray:
        return o.baseline_hazard_per_year * np.exp(
            o.log_hr_per_sd * z[o.idp] + o.age_per_year * (age - AGE_CENTRE) + o.sex_male * sex
        )

    # Deaths: all-cause exponential times; cause split independent of covariates.
    t_death = rng.exponential(1.0, n) / hazard(ALL_CAUSE_DEATH)
    death_date = imaging + np.maximum(_to_days(t_death), np.timedelta64(1, "D"))
    died = death_date <= end
    stop = np.where(died, death_date, end)
    cv = rng.random(n) < CV_DEATH_FRACTION

    # Incident heart failure, censored by death or the end of follow-up.
    t_hf = rng.exponential(1.0, n) / hazard(HEART_FAILURE)
    hf_date = imaging + np.maximum(_to_days(t_hf), np.timedelta64(1, "D"))
    hf = hf_date < stop

    records: list[pd.DataFrame] = [
        pd.DataFrame({"eid": eid[hf], "icd10": "I50", "date": hf_date[hf]})
    ]
    for o in LOGISTIC_OUTCOMES:
        logit = o.intercept + o.log_or_per_sd * z[o.idp] + o.age_per_year * (age - AGE_CENTRE)
        case = rng.random(n) < _expit(logit + o.sex_male * sex)
        dates = _event_dates(rng, imaging, stop, o.p_prevalent)
        records.append(pd.DataFrame({"eid": eid[case], "icd10": o.icd10, "date": dates[case]}))
    for code, _desc, prevalence, age_decade, male, only_sex in BACKGROUND_CODES:
        logit = np.log(prevalence / (1 - prevalence)) + age_decade * (age - AGE_CENTRE) / 10.0
        p = _expit(logit + (male * sex if only_sex is None else 0.0))
        case = rng.random(n) < p
        if only_sex is not None:
            case &= sex == only_sex
        dates = _event_dates(rng, imaging, stop, 0.5)
        records.append(pd.DataFrame({"eid": eid[case], "icd10": code, "date": dates[case]}))
    diagnoses = pd.concat(records, ignore_index=True)
    diagnoses["date"] = pd.to_datetime(diagnoses["date"])
    order = {e: i for i, e in enumerate(eid)}
    diagnoses = (
        diagnoses.assign(_o=diagnoses["eid"].map(order))
        .sort_values(["_o", "date", "icd10"], kind="stable")
        .drop(columns="_o")
        .reset_index(drop=True)
    )

    # Underlying causes.
    cause = np.empty(n, dtype=object)
    u = rng.random(n)
    cv_code = np.where(hf & (u < 0.7), "I50", np.where(rng.random(n) < 0.6, "I21", "I63"))
    cause[cv] = cv_code[cv]
    for s in (0, 1):
        allowed = [(c, w) for c, w, only in NON_CV_DEATH_CAUSES if only in (None, s)]
        codes = np.array([c for c, _ in allowed])
        weights = np.array([w for _, w in allowed])
        idx = ~cv & (sex == s)
        cause[idx] = rng.choice(codes, size=int(idx.sum()), p=weights / weights.sum())
    deaths = pd.DataFrame(
        {"eid": eid[died], "date": pd.to_datetime(death_date[died]), "icd10": cause[died]}
    ).reset_index(drop=True)

    effects = pd.concat([association_effects(), _outcome_effects(sds)], ignore_index=True)
    return Outcomes(diagnoses=diagnoses, deaths=deaths, effects=effects)


def _outcome_effects(sds: dict[str, float]) -> pd.DataFrame:
    rows = []
    for o in LOGISTIC_OUTCOMES:
        base = (
            f"{o.icd10} ({o.name}) ever diagnosed (any date in diagnoses.csv), logistic on the "
            f"{o.idp} z-score (cohort SD {sds[o.idp]:.3f}), age and sex"
        )
        term = f"icd10:{o.icd10}"
        rows += [
            dict(analysis="phewas", idp=o.idp, term=term, estimate=o.log_or_per_sd,
                 scale="log-OR per SD", description=base),
            dict(analysis="phewas", idp="age", term=term, estimate=o.age_per_year,
                 scale="log-OR per year", description=base),
            dict(analysis="phewas", idp="sex", term=term, estimate=o.sex_male,
                 scale="log-OR male vs female", description=base),
        ]  # fmt: skip
    for o in SURVIVAL_OUTCOMES:
        base = (
            f"{o.definition}; Cox PH (exponential, baseline {o.baseline_hazard_per_year}/year), "
            f"time from imaging_date to {END_OF_FOLLOW_UP}; on the {o.idp} z-score "
            f"(cohort SD {sds[o.idp]:.3f}), age and sex"
        )
        term = f"outcome:{o.name}"
        rows += [
            dict(analysis="survival", idp=o.idp, term=term, estimate=o.log_hr_per_sd,
                 scale="log-HR per SD", description=base),
            dict(analysis="survival", idp="age", term=term, estimate=o.age_per_year,
                 scale="log-HR per year", description=base),
            dict(analysis="survival", idp="sex", term=term, estimate=o.sex_male,
                 scale="log-HR male vs female", description=base),
        ]  # fmt: skip
    return pd.DataFrame(rows)


def outcome_model_markdown() -> str:
    """The outcome models with their parameters, for truth/README.md."""
    lines = [
        "## Outcome models (`cardiopheno.synth.outcomes`)",
        "",
        f"Follow-up from imaging_date to the administrative end {END_OF_FOLLOW_UP} or death.",
        "z-scores use the mean and SD (ddof 1) of the true IDP over the whole generated cohort",
        "(pathology included). Age terms are per year around 63.",
        "",
        "Logistic (ever diagnosed; `analysis = phewas`, term `icd10:<code>`):",
        "",
        "| code | IDP | log-OR per SD | intercept | age /year | male | share before imaging |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in LOGISTIC_OUTCOMES:
        lines.append(
            f"| {o.icd10} {o.name} | {o.idp} | {o.log_or_per_sd} | {o.intercept} | "
            f"{o.age_per_year} | {o.sex_male} | {o.p_prevalent} |"
        )
    lines += [
        "",
        "Survival (constant-baseline proportional hazards; `analysis = survival`, term",
        "`outcome:<name>`):",
        "",
        "| outcome | definition | IDP | log-HR per SD | baseline /year | age /year | male |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in SURVIVAL_OUTCOMES:
        lines.append(
            f"| {o.name} | {o.definition} | {o.idp} | {o.log_hr_per_sd} | "
            f"{o.baseline_hazard_per_year} | {o.age_per_year} | {o.sex_male} |"
        )
    lines += [
        "",
        f"{CV_DEATH_FRACTION:.0%} of deaths are cardiovascular, independently of covariates. A",
        "cardiovascular death has underlying cause I50 (probability 0.7) only after incident heart",
        "failure, otherwise I21 (0.6) or I63 (0.4). Non-cardiovascular causes: "
        + ", ".join(c for c, _, _ in NON_CV_DEATH_CAUSES)
        + " (sex-specific where relevant).",
        "",
        "Background codes (independent of every IDP given age and sex; logit = logit(prevalence)",
        "+ age log-OR per decade x (age - 63)/10 + male log-OR; sex-specific codes only in one sex;",
        "half of the dates before imaging):",
        "",
        "| code | description | prevalence at 63 | log-OR /decade | male | sex |",
        "|---|---|---|---|---|---|",
    ]
    for code, desc, prev, age_dec, male, only in BACKGROUND_CODES:
        sex_txt = {None: "both", 0: "female", 1: "male"}[only]
        lines.append(f"| {code} | {desc} | {prev} | {age_dec} | {male} | {sex_txt} |")
    lines.append("")
    return "\n".join(lines)
