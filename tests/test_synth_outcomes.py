"""Synthetic outcomes follow their stated models (statsmodels and lifelines recover them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from lifelines import CoxPHFitter

from cardiopheno.synth.outcomes import END_OF_FOLLOW_UP, sample_outcomes
from cardiopheno.synth.population import sample_population


@pytest.fixture(scope="module")
def cohort():
    pop = sample_population(20000, seed=5)
    return pop, sample_outcomes(pop, seed=5)


def _z(x):
    return (x - x.mean()) / x.std()


def _logit(pop, dx, code, idp):
    y = pop["eid"].isin(dx.loc[dx["icd10"] == code, "eid"]).astype(int)
    X = sm.add_constant(pd.DataFrame({"z": _z(pop[idp]), "age": pop["age"], "sex": pop["sex"]}))
    return sm.Logit(y, X).fit(disp=0)


def test_hypertension_logistic_on_lvm_z_recovers_the_true_log_odds_ratio(cohort):
    pop, out = cohort
    truth = out.effects.query("analysis == 'phewas' and term == 'icd10:I10' and idp == 'LVM'")
    fit = _logit(pop, out.diagnoses, "I10", "LVM")
    assert fit.params["z"] > 0
    assert abs(fit.params["z"] - truth["estimate"].item()) < 4 * fit.bse["z"]


def test_unrelated_codes_are_independent_of_idps_given_age_and_sex(cohort):
    pop, out = cohort
    for code in ("K21", "M54", "J45"):
        fit = _logit(pop, out.diagnoses, code, "LVM")
        assert abs(fit.params["z"]) < 4 * fit.bse["z"], code


def test_heart_failure_cox_on_lvef_z_recovers_a_negative_log_hazard_ratio(cohort):
    pop, out = cohort
    img = pd.to_datetime(pop["imaging_date"]).to_numpy()
    end = np.datetime64(END_OF_FOLLOW_UP)
    death = out.deaths.set_index("eid")["date"].reindex(pop["eid"]).to_numpy()
    stop = np.where(pd.isna(death), end, death).astype("datetime64[ns]")
    hf = out.diagnoses.query("icd10 == 'I50'").set_index("eid")["date"].reindex(pop["eid"])
    event = hf.notna().to_numpy()
    when = np.where(event, hf.to_numpy(), stop).astype("datetime64[ns]")
    df = pd.DataFrame({
        "T": (when - img).astype("timedelta64[D]").astype(float) / 365.25,
        "E": event.astype(int), "z": _z(pop["LVEF"]).to_numpy(),
        "age": pop["age"].to_numpy(), "sex": pop["sex"].to_numpy(),
    })  # fmt: skip
    fit = CoxPHFitter().fit(df, "T", "E")
    truth = out.effects.query("term == 'outcome:heart_failure' and idp == 'LVEF'")["estimate"]
    assert fit.params_["z"] < 0
    assert abs(fit.params_["z"] - truth.item()) < 4 * fit.standard_errors_["z"]


def test_dates_prevalences_and_sex_specific_codes_are_plausible(cohort):
    pop, out = cohort
    dx = out.diagnoses.merge(pop[["eid", "sex", "imaging_date"]], on="eid")
    assert dx["icd10"].nunique() >= 30
    assert (dx["date"] <= pd.Timestamp(END_OF_FOLLOW_UP)).all()
    assert (
        dx.loc[dx["icd10"] == "I50", "date"] > dx.loc[dx["icd10"] == "I50", "imaging_date"]
    ).all()
    assert (dx.loc[dx["icd10"].isin(["N40", "C61"]), "sex"] == 1).all()
    assert (dx.loc[dx["icd10"].isin(["N95", "C50", "N81"]), "sex"] == 0).all()
    before = (dx["date"] < dx["imaging_date"]).mean()
    assert 0.2 < before < 0.8  # both prevalent and incident diagnoses
    prevalence = dx.groupby("icd10")["eid"].nunique() / len(pop)
    assert prevalence.between(0.005, 0.30).all(), prevalence[~prevalence.between(0.005, 0.30)]
    deaths = out.deaths.merge(pop[["eid", "imaging_date"]], on="eid")
    assert (deaths["date"] > deaths["imaging_date"]).all()
    assert 0.02 < len(deaths) / len(pop) < 0.2
    assert deaths["icd10"].isin(["I21", "I50", "I63"]).any()
    assert deaths["eid"].is_unique


def test_effects_table_lists_every_analysis(cohort):
    _pop, out = cohort
    eff = out.effects
    assert list(eff.columns) == ["analysis", "idp", "term", "estimate", "scale", "description"]
    assert {"association", "phewas", "survival"} <= set(eff["analysis"])
    assert {"outcome:heart_failure", "outcome:cv_death", "outcome:all_cause_death"} <= set(
        eff["term"]
    )
