"""The synthetic population model: published reference values and recoverable coefficients."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.formula.api as smf

from cardiopheno.synth.population import (
    AORTA_COEFFICIENTS,
    BASE_COEFFICIENTS,
    PUBLISHED_REFERENCE,
    TRUE_IDPS,
    association_effects,
    sample_population,
)


@pytest.fixture(scope="module")
def pop():
    return sample_population(20000, seed=3)


def test_population_has_contract_columns_and_ranges(pop):
    for col in ("eid", "age", "sex", "height_cm", "weight_kg", "bsa_m2", "sbp", "dbp",
                "heart_rate", "imaging_date", "pathology", *TRUE_IDPS):  # fmt: skip
        assert col in pop.columns, col
    assert pop["eid"].is_unique and isinstance(pop["eid"].iloc[0], str)
    assert pop["age"].between(45, 80).all()
    assert set(pop["sex"].unique()) == {0, 1}
    mosteller = np.sqrt(pop["height_cm"] * pop["weight_kg"] / 3600)
    np.testing.assert_allclose(pop["bsa_m2"], mosteller, rtol=1e-12)
    dates = pop["imaging_date"]
    assert dates.min().year >= 2014 and dates.max().year <= 2020
    np.testing.assert_allclose(pop["LVSV"], pop["LVEDV"] - pop["LVESV"])
    np.testing.assert_allclose(pop["LVEF"], 100 * pop["LVSV"] / pop["LVEDV"])
    np.testing.assert_allclose(pop["RVEF"], 100 * pop["RVSV"] / pop["RVEDV"])
    share = (pop["pathology"] != "none").mean()
    assert 0.07 < share < 0.13


def test_pathology_free_means_and_sds_match_petersen_2017(pop):
    healthy = pop[pop["pathology"] == "none"]
    for name, ref in PUBLISHED_REFERENCE.items():
        values = healthy[name[:-1]] / healthy["bsa_m2"] if name.endswith("i") else healthy[name]
        for sex, (mean, sd) in ref.items():
            v = values[healthy["sex"] == sex]
            assert abs(v.mean() - mean) < 0.6, (name, sex, v.mean(), mean)
            assert abs(v.std() - sd) < 0.06 * sd, (name, sex, v.std(), sd)


def test_ols_recovers_true_association_coefficients(pop):
    healthy = pop[pop["pathology"] == "none"]
    for idp, coef in BASE_COEFFICIENTS.items():
        fit = smf.ols(f"{idp} ~ age + sex + bsa_m2", data=healthy).fit()
        for term in ("age", "sex", "bsa_m2"):
            est, se = fit.params[term], fit.bse[term]
            assert abs(est - coef[term]) < 4 * se, (idp, term, est, coef[term], se)
    eff = association_effects()
    assert set(eff["term"]) == {"intercept", "age", "sex", "bsa_m2"}
    assert set(eff["idp"]) == set(BASE_COEFFICIENTS) | set(AORTA_COEFFICIENTS)
    # the aortic rows are the generator's mean: OLS on every subject recovers them
    for idp in AORTA_COEFFICIENTS:
        fit = smf.ols(f"{idp} ~ age + sex", data=pop).fit()
        truth = eff[eff["idp"] == idp].set_index("term")["estimate"]
        for term in ("intercept", "age", "sex"):
            assert abs(fit.params[term.replace("intercept", "Intercept")] - truth[term]) < (
                4 * fit.bse[term.replace("intercept", "Intercept")]
            ), (idp, term)


def test_population_is_deterministic_per_seed():
    a, b, c = sample_population(50, 1), sample_population(50, 1), sample_population(50, 2)
    assert a.equals(b)
    assert not np.allclose(a["LVEDV"], c["LVEDV"])
