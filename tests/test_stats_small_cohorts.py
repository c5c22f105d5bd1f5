"""Statistics stages on cohorts too small to estimate anything: the run goes on.

Each stage writes its tables with the normal columns and dtypes (zero rows, or rows marked not
fitted), logs a warning saying why and records the reason in the table's metadata; the figures
then say "not enough data: <reason>". Configuration errors still fail fast, naming the config key.
Also the survival date handling: a cohort without deaths, and imaging dates as strings, dates or
datetimes, give the same outcomes.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from cardiopheno.io.tables import file_metadata, read_table
from cardiopheno.plots.association import effects_heatmap, idp_by_age
from cardiopheno.plots.figures import association_figures, phewas_figures, survival_figures
from cardiopheno.plots.phewas import manhattan
from cardiopheno.plots.survival import forest, km_by_quartile
from cardiopheno.stats.association import ASSOCIATION_DTYPES, fit_age_sex
from cardiopheno.stats.data import select_idps
from cardiopheno.stats.outcomes import OUTCOME_DTYPES, OutcomeDefinition, derive_outcomes
from cardiopheno.stats.phecodes import load_phecode_map
from cardiopheno.stats.phewas import PHEWAS_DTYPES, run_phewas, top_hits
from cardiopheno.stats.pipeline import association_stage, phewas_stage, survival_stage
from cardiopheno.stats.schema import NOT_ESTIMABLE_KEY, NotEstimable, not_estimable_reason
from cardiopheno.stats.survival import COX_DTYPES, fit_cox

HF = OutcomeDefinition("heart_failure", ("I50",))
DEATH = OutcomeDefinition("all_cause_death", ("*",), ("deaths",))
OUTCOMES_CFG = {
    "heart_failure": {"icd10": ["I50"], "sources": ["diagnoses", "deaths"]},
    "all_cause_death": {"icd10": ["*"], "sources": ["deaths"]},
}


def _dtypes(df: pd.DataFrame) -> dict[str, str]:
    return {c: str(t) for c, t in df.dtypes.items()}


def _population(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.uniform(45, 80, n)
    sex = rng.integers(0, 2, n).astype(float)
    return pd.DataFrame(
        {"eid": [str(1000 + i) for i in range(n)], "age": age, "sex": sex,
         "height_cm": rng.normal(170, 8, n), "weight_kg": rng.normal(75, 10, n),
         "imaging_date": "2015-06-01",
         "LVEDV": 150 - 0.5 * age + 25 * sex + rng.normal(0, 10, n),
         "LVEF": 60 + rng.normal(0, 5, n)}
    )  # fmt: skip


@pytest.fixture
def tiny(tmp_path):
    """Three subjects as the stages read them: phenotypes, QC, covariates, diagnoses, deaths."""
    pop = _population(3)
    paths = {k: tmp_path / f"{k}.csv" for k in ("phenotypes", "qc", "covariates", "diag", "dth")}
    pop[["eid", "LVEDV", "LVEF"]].to_csv(paths["phenotypes"], index=False)
    pd.DataFrame({"eid": pop["eid"], "qc_pass": True}).to_csv(paths["qc"], index=False)
    pop.drop(columns=["LVEDV", "LVEF"]).to_csv(paths["covariates"], index=False)
    pd.DataFrame({"eid": [pop["eid"][0]], "icd10": ["I50"], "date": ["2017-01-01"]}).to_csv(
        paths["diag"], index=False
    )
    pd.DataFrame(columns=["eid", "date", "icd10"]).to_csv(paths["dth"], index=False)  # no deaths
    return paths


def _texts(fig: Figure) -> str:
    """Every text drawn on the axes, with the wrapping undone."""
    return " ".join(" ".join(t.get_text().split()) for ax in fig.axes for t in ax.texts)


# --- association ---------------------------------------------------------------------------


def test_association_of_three_subjects_is_not_estimable():
    with pytest.raises(NotEstimable, match="at least 6 complete rows.*most complete has 3"):
        fit_age_sex(_population(3), ["LVEDV", "LVEF"], [])


def test_association_of_one_sex_is_rank_deficient_not_pseudo_inverse_estimates():
    women = _population(40).assign(sex=0.0)
    with pytest.raises(NotEstimable, match="rank-deficient"):
        fit_age_sex(women, ["LVEDV"], [])


def test_association_stage_writes_empty_tables_with_the_normal_schema(tiny, tmp_path, caplog):
    out_a, out_r = tmp_path / "assoc.parquet", tmp_path / "ranges.parquet"
    with caplog.at_level(logging.WARNING):
        association_stage(
            tiny["phenotypes"], tiny["qc"], tiny["covariates"], out_a, out_r,
            {"covariates": ["bsa_m2"], "reference_min_n": 20},
        )  # fmt: skip
    assoc, ranges = read_table(out_a), read_table(out_r)
    assert assoc.empty and list(assoc.columns) == list(ASSOCIATION_DTYPES)
    # the empty table has the dtypes of a real fit
    real = fit_age_sex(_population(200), ["LVEDV"], [])
    assert _dtypes(assoc) == _dtypes(real) == ASSOCIATION_DTYPES
    assert "among 3 QC-passed subjects" in not_estimable_reason(out_a)
    assert any("wrote an empty associations table" in r.message for r in caplog.records)
    # reference ranges still count subjects per band, without statistics
    assert ranges["n"].sum() > 0 and ranges["mean"].isna().all()
    assert NOT_ESTIMABLE_KEY not in file_metadata(out_r)


def test_association_skips_an_idp_with_one_value_instead_of_dividing_by_a_zero_se(caplog):
    """A clean synthetic cohort of 120 made every QC-passed subject's RA_frames_excluded 0, and
    the stage crashed (ZeroDivisionError) instead of fitting the other IDPs."""
    pop = _population(40).assign(RAV_max=0.0)
    with caplog.at_level(logging.WARNING):
        out = fit_age_sex(pop, ["LVEDV", "RAV_max"], [])
    assert set(out["idp"]) == {"LVEDV"}
    assert any(
        "same value in every complete row: RAV_max (= 0)" in r.message for r in caplog.records
    )
    with pytest.raises(NotEstimable, match="1 IDPs take one value only"):
        fit_age_sex(pop, ["RAV_max"], [])


def test_frame_counts_are_not_idps():
    frame = pd.DataFrame({"eid": ["a"], "LAV_max": [60.0], "LA_frames_excluded": [0.0]})
    assert select_idps(frame, None) == ["LAV_max"]


def test_association_stage_fits_aortic_idps_but_not_float_covariates(tmp_path):
    """The aortic family's columns are IDPs; the covariate it reads (central_pp, a float in
    the synthetic and UK Biobank covariates) is not, unless association.idps names it."""
    pop = _population(60, seed=4)
    rng = np.random.default_rng(4)
    pop["central_pp"] = rng.normal(50, 8, len(pop))
    pop["AAo_distensibility"] = 6.0 - 0.13 * (pop["age"] - 45) + rng.normal(0, 0.5, len(pop))
    pop["AAo_max_area"] = rng.normal(900, 80, len(pop))
    pheno, cov = tmp_path / "pheno.csv", tmp_path / "cov.csv"
    idps = ["LVEDV", "AAo_distensibility", "AAo_max_area"]
    pop[["eid", *idps]].to_csv(pheno, index=False)
    pop.drop(columns=idps).to_csv(cov, index=False)
    out_a, out_r = tmp_path / "assoc.parquet", tmp_path / "ranges.parquet"
    association_stage(pheno, None, cov, out_a, out_r, {"covariates": ["bsa_m2"]})
    assoc = read_table(out_a)
    assert sorted(assoc["idp"].unique()) == sorted(idps)
    age = assoc.set_index(["idp", "term"]).loc[("AAo_distensibility", "age")]
    assert age["ci_low"] < -0.13 < age["ci_high"]
    association_stage(pheno, None, cov, out_a, out_r, {"idps": ["LVEDV", "central_pp"]})
    assert sorted(read_table(out_a)["idp"].unique()) == ["LVEDV", "central_pp"]


@pytest.mark.parametrize(
    ("cfg", "key"),
    [({"idps": ["LVEDV", "NOT_AN_IDP"]}, "association.idps"),
     ({"covariates": ["bsa_m2", "smoking"]}, "association.covariates")],
)  # fmt: skip
def test_association_config_errors_fail_fast_naming_the_key(tiny, tmp_path, cfg, key):
    with pytest.raises(KeyError, match=key.replace(".", r"\.")):
        association_stage(
            tiny["phenotypes"], tiny["qc"], tiny["covariates"], tmp_path / "a.parquet",
            tmp_path / "r.parquet", cfg,
        )  # fmt: skip


# --- PheWAS --------------------------------------------------------------------------------


def test_phewas_without_a_phecode_reaching_min_cases_is_not_estimable(tiny, tmp_path, caplog):
    pop = _population(30)
    diag = pd.DataFrame({"eid": pop["eid"][:5], "icd10": "I50", "date": "2016-01-01"})
    with pytest.raises(NotEstimable, match="no phecode has at least 20 cases among 30"):
        run_phewas(pop, diag, ["LVEDV"], load_phecode_map(), min_cases=20)

    out_p, out_t = tmp_path / "phewas.parquet", tmp_path / "top.parquet"
    with caplog.at_level(logging.WARNING):
        phewas_stage(
            tiny["phenotypes"], tiny["qc"], tiny["covariates"], tiny["diag"], out_p, out_t,
            {"min_cases": 20},
        )  # fmt: skip
    msg = [r.message for r in caplog.records if "phewas:" in r.message]
    assert msg and "phewas.min_cases = 20" in msg[0] and "wrote empty tables" in msg[0]
    for path in (out_p, out_t):
        table = read_table(path)
        assert table.empty and _dtypes(table) == PHEWAS_DTYPES
        assert "no phecode has at least 20 cases" in not_estimable_reason(path)


def test_phewas_empty_schema_matches_a_real_run():
    pop = _population(120, 1)
    rng = np.random.default_rng(2)
    cases = pop["eid"][rng.random(len(pop)) < 0.3]
    diag = pd.DataFrame({"eid": cases, "icd10": "I50", "date": "2016-01-01"})
    real = run_phewas(pop, diag, ["LVEDV", "LVEF"], load_phecode_map(), min_cases=20)
    assert len(real) > 0 and _dtypes(real) == PHEWAS_DTYPES
    assert _dtypes(top_hits(real, q_threshold=0.0)) == PHEWAS_DTYPES  # no hits, same schema


def test_phewas_leaves_out_an_idp_without_spread():
    pop = _population(120, 1).assign(LVEF=np.nan)
    pop.loc[0, "LVEF"] = 55.0  # one value: SD undefined
    diag = pd.DataFrame({"eid": pop["eid"][:40], "icd10": "I50", "date": "2016-01-01"})
    out = run_phewas(pop, diag, ["LVEDV", "LVEF"], load_phecode_map(), min_cases=20)
    assert set(out["idp"]) == {"LVEDV"}
    with pytest.raises(NotEstimable, match="positive SD"):
        run_phewas(pop, diag, ["LVEF"], load_phecode_map(), min_cases=20)


# --- survival ------------------------------------------------------------------------------


def test_cohort_without_deaths_derives_outcomes_instead_of_a_date_type_error():
    # Regression: an outcome read only from deaths, in a cohort with no death records, built its
    # records as an object-dtype frame; event dates became object and "stop - imaging_date"
    # raised "TypeError: cannot subtract DatetimeArray from ndarray".
    subjects = pd.DataFrame({"eid": ["1", "2"], "imaging_date": ["2015-01-01", "2016-01-01"]})
    diag = pd.DataFrame({"eid": ["1"], "icd10": ["I50"], "date": ["2017-01-01"]})
    no_deaths = pd.DataFrame({"eid": [], "date": [], "icd10": []}, dtype=object)
    out = derive_outcomes(subjects, diag, no_deaths, [HF, DEATH]).set_index(["outcome", "eid"])
    assert _dtypes(out.reset_index()) == OUTCOME_DTYPES
    # follow-up ends at the latest record (2017-01-01); nobody dies
    assert out.loc[("all_cause_death", "1"), "status"] == "censored"
    assert out.loc[("all_cause_death", "2"), "time_years"] == pytest.approx(366 / 365.25)
    assert out.loc[("heart_failure", "1"), "status"] == "event"
    assert out.loc[("heart_failure", "1"), "time_years"] == pytest.approx(731 / 365.25)


def test_end_of_follow_up_skips_a_table_without_dates():
    # builtin max(NaT, date) is NaT: with no diagnoses, follow-up used to end at NaT
    subjects = pd.DataFrame({"eid": ["1", "2"], "imaging_date": ["2015-01-01", "2015-01-01"]})
    no_diag = pd.DataFrame({"eid": [], "icd10": [], "date": []}, dtype=object)
    deaths = pd.DataFrame({"eid": ["1"], "date": ["2016-01-01"], "icd10": ["C34"]})
    out = derive_outcomes(subjects, no_diag, deaths, [HF, DEATH]).set_index(["outcome", "eid"])
    assert out.loc[("all_cause_death", "1"), "status"] == "event"
    assert out.loc[("heart_failure", "2"), "censor_date"] == pd.Timestamp("2016-01-01")
    assert out.loc[("heart_failure", "2"), "time_years"] == pytest.approx(365 / 365.25)
    # no dated record anywhere: follow-up is unknown, nobody enters a model
    none = derive_outcomes(subjects, no_diag, no_diag, [HF])
    assert (none["status"] == "unknown end of follow-up").all() and not none["event"].any()


@pytest.mark.parametrize(
    "dates",
    [["2015-01-01", "2016-03-01"],
     [dt.date(2015, 1, 1), dt.date(2016, 3, 1)],
     pd.to_datetime(["2015-01-01", "2016-03-01"]),
     np.array(["2015-01-01", "2016-03-01"], dtype="datetime64[s]")],
    ids=["iso-strings", "dates", "datetime64-ns", "datetime64-s"],
)  # fmt: skip
def test_imaging_dates_as_strings_or_datetimes_give_the_same_outcomes(dates):
    diag = pd.DataFrame({"eid": ["1", "2"], "icd10": ["I50", "I50"], "date": ["2018-01-01", None]})
    deaths = pd.DataFrame({"eid": ["2"], "date": ["2019-06-01"], "icd10": ["C34"]})
    ref = derive_outcomes(
        pd.DataFrame({"eid": ["1", "2"], "imaging_date": ["2015-01-01", "2016-03-01"]}),
        diag, deaths, [HF, DEATH],
    )  # fmt: skip
    out = derive_outcomes(
        pd.DataFrame({"eid": ["1", "2"], "imaging_date": dates}), diag, deaths, [HF, DEATH]
    )
    pd.testing.assert_frame_equal(out, ref)
    assert _dtypes(out) == OUTCOME_DTYPES


def test_cox_without_events_keeps_every_row_marked_not_fitted():
    pop = _population(30)
    outcomes = pd.DataFrame({"eid": pop["eid"], "outcome": "stroke", "status": "censored",
                             "event": False, "time_years": 5.0})  # fmt: skip
    unusable = outcomes.assign(outcome="cv_death", status="prevalent", time_years=np.nan)
    out = fit_cox(pop, pd.concat([outcomes, unusable]), ["LVEDV", "LVEF"], ["age", "sex"])
    assert _dtypes(out) == COX_DTYPES and len(out) == 4  # an outcome nobody is at risk for too
    assert not out["converged"].any() and out["p"].isna().all()
    assert (out["note"] == "fewer than 10 events").all()
    assert out.set_index(["outcome", "idp"]).loc[("cv_death", "LVEF"), "n"] == 0
    with pytest.raises(NotEstimable):
        fit_cox(pop, outcomes.iloc[:0], ["LVEDV"])


def test_survival_stage_on_a_tiny_cohort_without_deaths(tiny, tmp_path, caplog):
    out_c, out_o = tmp_path / "cox.parquet", tmp_path / "outcomes.parquet"
    with caplog.at_level(logging.WARNING):
        survival_stage(
            tiny["phenotypes"], tiny["qc"], tiny["covariates"], tiny["diag"], tiny["dth"], out_c,
            out_o, {"outcomes": OUTCOMES_CFG, "min_events": 10},
        )  # fmt: skip
    cox, outcomes = read_table(out_c), read_table(out_o)
    assert _dtypes(cox) == COX_DTYPES and len(cox) == 4 and not cox["converged"].any()
    assert _dtypes(outcomes) == OUTCOME_DTYPES and len(outcomes) == 6
    assert "survival.min_events = 10" in not_estimable_reason(out_c)
    assert any("no Cox model could be fitted" in r.message for r in caplog.records)
    with pytest.raises(KeyError, match=r"survival\.covariates"):
        survival_stage(
            tiny["phenotypes"], tiny["qc"], tiny["covariates"], tiny["diag"], tiny["dth"],
            out_c, out_o, {"outcomes": OUTCOMES_CFG, "covariates": ["age", "bmi"]},
        )  # fmt: skip


# --- figures -------------------------------------------------------------------------------


def test_plots_say_not_enough_data_with_the_reason():
    assert "not enough data: too few" in _texts(
        effects_heatmap(pd.DataFrame(columns=list(ASSOCIATION_DTYPES)), reason="too few")
    )
    assert "not enough data: none" in _texts(
        manhattan(pd.DataFrame(columns=list(PHEWAS_DTYPES)), reason="none")
    )
    assert "not enough data: why" in _texts(
        forest(pd.DataFrame(columns=list(COX_DTYPES)), reason="why")
    )
    three = _population(3).assign(sex=[0.0, 1.0, 0.0])
    assert "fewer than 3 QC-passed subjects of either sex" in _texts(idp_by_age(three, "LVEDV"))
    outcomes = pd.DataFrame({"eid": three["eid"], "outcome": "stroke", "status": "censored",
                             "event": False, "time_years": 5.0})  # fmt: skip
    assert "3 subjects at risk" in _texts(km_by_quartile(three, outcomes, "stroke", "LVEDV"))


def test_figure_rules_draw_every_declared_output_on_a_tiny_cohort(tiny, tmp_path):
    res = tmp_path / "res"
    a, r = res / "assoc.parquet", res / "ranges.parquet"
    association_stage(tiny["phenotypes"], tiny["qc"], tiny["covariates"], a, r, {})
    p, t = res / "phewas.parquet", res / "top.parquet"
    phewas_stage(tiny["phenotypes"], tiny["qc"], tiny["covariates"], tiny["diag"], p, t, {})
    c, o = res / "cox.parquet", res / "outcomes.parquet"
    survival_stage(
        tiny["phenotypes"], tiny["qc"], tiny["covariates"], tiny["diag"], tiny["dth"], c, o,
        {"outcomes": OUTCOMES_CFG},
    )  # fmt: skip
    figs = tmp_path / "figs"
    figs.mkdir()
    by_age = [figs / "LVEDV_by_age.png", figs / "effects_heatmap.png"]
    association_figures(tiny["phenotypes"], tiny["qc"], tiny["covariates"], a, r, by_age, {})
    phewas_figures(p, [figs / "manhattan.png"], {})
    surv = [figs / "km_heart_failure__LVEDV.png", figs / "cox_forest.png"]
    survival_figures(tiny["phenotypes"], tiny["qc"], tiny["covariates"], c, o, surv, {})
    for path in [*by_age, figs / "manhattan.png", *surv]:
        assert path.stat().st_size > 5_000, path
