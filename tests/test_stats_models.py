"""Association (statsmodels), Cox (lifelines) and multiple testing on small seeded tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from lifelines import CoxPHFitter
from statsmodels.stats.multitest import multipletests

from cardiopheno.stats.association import fit_age_sex, reference_ranges
from cardiopheno.stats.data import analysis_frame, select_idps
from cardiopheno.stats.multiple_testing import add_corrections
from cardiopheno.stats.survival import fit_cox


@pytest.fixture
def frame():
    rng = np.random.default_rng(3)
    n = 400
    age = rng.uniform(45, 80, n)
    sex = rng.integers(0, 2, n)
    bsa = rng.normal(1.9, 0.2, n)
    lvedv = 50 - 0.4 * age + 20 * sex + 60 * bsa + rng.normal(0, 15 + 5 * sex, n)
    return pd.DataFrame(
        {"eid": [str(i) for i in range(n)], "age": age, "sex": sex.astype(float), "bsa_m2": bsa,
         "LVEDV": lvedv, "LVEF": 60 + rng.normal(0, 5, n)}
    )  # fmt: skip


def test_age_sex_ols_matches_statsmodels_with_hc3(frame):
    out = fit_age_sex(frame, ["LVEDV"], ["bsa_m2"], cov_type="HC3", age_centre=60).set_index("term")
    d = frame.assign(age=frame["age"] - 60)
    ref = smf.ols("LVEDV ~ age * sex + bsa_m2", d).fit(cov_type="HC3")
    for term in ["age", "sex", "age:sex", "bsa_m2"]:
        assert out.at[term, "estimate"] == pytest.approx(ref.params[term], rel=1e-10)
        assert out.at[term, "se"] == pytest.approx(ref.bse[term], rel=1e-10)
        assert out.at[term, "p"] == pytest.approx(ref.pvalues[term], rel=1e-8)
        assert out.at[term, "ci_low"] == pytest.approx(ref.conf_int().loc[term, 0], rel=1e-8)
    # the slope in men is age + age:sex
    assert out.at["age_male", "estimate"] == pytest.approx(
        ref.params["age"] + ref.params["age:sex"]
    )
    sd = frame["LVEDV"].std()
    assert out.at["age", "estimate_std"] == pytest.approx(10 * ref.params["age"] / sd)
    assert out.at["age", "n"] == len(frame)


def test_corrections_are_bh_and_bonferroni_over_non_intercept_rows(frame):
    out = fit_age_sex(frame, ["LVEDV", "LVEF"], ["bsa_m2"])
    rows = out["term"] != "intercept"
    assert out.loc[~rows, "q_bh"].isna().all()
    np.testing.assert_allclose(
        out.loc[rows, "q_bh"], multipletests(out.loc[rows, "p"], method="fdr_bh")[1]
    )
    np.testing.assert_allclose(
        out.loc[rows, "p_bonferroni"], np.minimum(out.loc[rows, "p"] * rows.sum(), 1)
    )


def test_missing_p_values_stay_out_of_the_family():
    df = pd.DataFrame({"p": [0.01, np.nan, 0.04]})
    out = add_corrections(df)
    assert np.isnan(out.at[1, "q_bh"]) and out.at[2, "p_bonferroni"] == pytest.approx(0.08)


def test_reference_ranges_by_sex_and_band(frame):
    rr = reference_ranges(frame, ["LVEDV"], [40, 60, 80], min_n=5).set_index(["sex", "age_band"])
    sel = (frame["sex"] == 1) & (frame["age"] >= 60) & (frame["age"] < 80)
    v = frame.loc[sel, "LVEDV"]
    row = rr.loc[("male", "60-80")]
    assert row["n"] == len(v) and row["mean"] == pytest.approx(v.mean())
    assert row["p2_5"] == pytest.approx(np.percentile(v, 2.5)) and row["sd"] == pytest.approx(
        v.std()
    )
    with pytest.raises(ValueError, match="increasing"):
        reference_ranges(frame, ["LVEDV"], [60, 40])


def test_analysis_frame_keeps_qc_passed_subjects_and_adds_bsa():
    pheno = pd.DataFrame(
        {"eid": ["1", "2", "3"], "LVEDV": [100.0, 120.0, 140.0], "ED_frame": [0, 0, 0]}
    )
    qc = pd.DataFrame({"eid": ["1", "2", "3"], "qc_pass": [True, False, True]})
    cov = pd.DataFrame({"eid": ["1", "2", "3"], "age": [50, 60, 70], "sex": [0, 1, 1],
                        "height_cm": [170, 180, 160], "weight_kg": [70, 80, 60]})  # fmt: skip
    f = analysis_frame(pheno, qc, cov)
    assert f["eid"].tolist() == ["1", "3"]
    assert f["bsa_m2"].iloc[0] == pytest.approx(np.sqrt(170 * 70 / 3600))
    assert select_idps(f, None) == ["LVEDV"]  # ints and covariates are not IDPs
    # a configured IDP that is not a column is a configuration error naming the key
    with pytest.raises(KeyError, match=r"association\.idps.*WT_global"):
        select_idps(f, ["LVEDV", "WT_global"], "association.idps")


def test_cox_matches_lifelines_directly(frame):
    rng = np.random.default_rng(5)
    z = (frame["LVEF"] - frame["LVEF"].mean()) / frame["LVEF"].std()
    t = rng.exponential(1 / (0.1 * np.exp(-0.5 * z + 0.03 * (frame["age"] - 60))))
    c = rng.uniform(0, 10, len(frame))
    outcomes = pd.DataFrame({"eid": frame["eid"], "outcome": "hf", "status": "censored",
                             "event": t < c, "time_years": np.minimum(t, c)})  # fmt: skip
    outcomes.loc[outcomes["event"], "status"] = "event"
    out = fit_cox(frame, outcomes, ["LVEF"], ["age", "sex"]).iloc[0]
    d = pd.DataFrame({"T": outcomes["time_years"], "E": outcomes["event"].astype(int), "LVEF": z,
                      "age": frame["age"], "sex": frame["sex"]})  # fmt: skip
    ref = CoxPHFitter().fit(d, "T", "E")
    assert out["estimate"] == pytest.approx(ref.params_["LVEF"], rel=1e-6)
    assert out["se"] == pytest.approx(ref.standard_errors_["LVEF"], rel=1e-6)
    assert out["concordance"] == pytest.approx(ref.concordance_index_, rel=1e-9)
    assert 0 <= out["ph_p"] <= 1 and out["n_events"] == int(d["E"].sum())
    assert out["ci_low"] < -0.5 < out["ci_high"]


def test_cox_with_too_few_events_is_reported_not_fitted(frame):
    outcomes = pd.DataFrame({"eid": frame["eid"], "outcome": "rare", "status": "censored",
                             "event": False, "time_years": 5.0})  # fmt: skip
    outcomes.loc[:2, ["event", "status"]] = [True, "event"]
    out = fit_cox(frame, outcomes, ["LVEF"], min_events=10).iloc[0]
    assert not out["converged"] and "fewer than 10 events" in out["note"] and np.isnan(out["p"])


def test_cox_on_an_idp_with_one_value_is_reported_not_fitted(frame):
    rng = np.random.default_rng(6)
    outcomes = pd.DataFrame({"eid": frame["eid"], "outcome": "hf", "status": "censored",
                             "event": rng.random(len(frame)) < 0.3, "time_years": 5.0})  # fmt: skip
    outcomes.loc[outcomes["event"], "status"] = "event"
    flat = frame.assign(LA_frames_excluded=0.0)
    out = fit_cox(flat, outcomes, ["LA_frames_excluded", "LVEF"]).set_index("idp")
    assert not out.loc["LA_frames_excluded", "converged"]
    assert out.loc["LA_frames_excluded", "note"] == "IDP takes one value"
    assert out.loc["LVEF", "converged"]  # the other IDPs are fitted as usual
