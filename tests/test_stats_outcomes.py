"""Outcome derivation: events before/on/after imaging, missing dates, death as censoring."""

from __future__ import annotations

import pandas as pd
import pytest

from cardiopheno.stats.outcomes import OutcomeDefinition, derive_outcomes

HF = OutcomeDefinition("heart_failure", ("I50",))
DEATH = OutcomeDefinition("all_cause_death", ("*",), ("deaths",))
CV = OutcomeDefinition("cv_death", ("I",), ("deaths",))


@pytest.fixture
def cohort():
    subjects = pd.DataFrame(
        {
            "eid": [
                "before",
                "same_day",
                "after",
                "undated",
                "dies_other",
                "dies_hf",
                "none",
                "noimg",
                "late",
            ],
            "imaging_date": ["2015-01-01"] * 7 + [None, "2015-01-01"],
        }
    )
    diagnoses = pd.DataFrame(
        {
            "eid": ["before", "same_day", "after", "undated", "dies_other", "late"],
            "icd10": ["I50.0", "I509", "I50", "I50", "I50", "I50"],
            "date": ["2014-06-01", "2015-01-01", "2017-01-01", None, "2019-01-01", "2021-06-01"],
        }
    )
    deaths = pd.DataFrame(
        {
            "eid": ["dies_other", "dies_hf"],
            "date": ["2018-01-01", "2016-01-01"],
            "icd10": ["C34", "I50"],
        }
    )
    return subjects, diagnoses, deaths


def _by_eid(out, outcome):
    return out[out["outcome"] == outcome].set_index("eid")


def test_event_timing_rules(cohort):
    out = _by_eid(derive_outcomes(*cohort, [HF], "2020-12-31"), "heart_failure")
    assert out.at["before", "status"] == "prevalent"
    assert out.at["same_day", "status"] == "prevalent"  # on the imaging day: not incident
    assert out.at["undated", "status"] == "undated event"
    assert out.at["noimg", "status"] == "no imaging date"
    assert out.at["after", "status"] == "event"
    assert out.at["after", "time_years"] == pytest.approx(731 / 365.25)
    assert out.at["none", "status"] == "censored"
    assert out.at["none", "time_years"] == pytest.approx(
        (pd.Timestamp("2020-12-31") - pd.Timestamp("2015-01-01")).days / 365.25
    )
    # An event after the end of follow-up is not counted: censored at the end.
    assert out.at["late", "status"] == "censored" and not out.at["late", "event"]


def test_death_from_another_cause_censors_and_fatal_event_counts(cohort):
    out = _by_eid(derive_outcomes(*cohort, [HF], "2020-12-31"), "heart_failure")
    # dies of cancer in 2018 before the 2019 HF record: censored at death
    assert out.at["dies_other", "status"] == "censored"
    assert out.at["dies_other", "time_years"] == pytest.approx(1096 / 365.25)
    # death with underlying cause I50 counts as the event (sources include deaths)
    assert out.at["dies_hf", "status"] == "event"


def test_death_outcomes_and_undated_death(cohort):
    subjects, diagnoses, deaths = cohort
    deaths = pd.concat([deaths, pd.DataFrame({"eid": ["none"], "date": [None], "icd10": ["I21"]})])
    out = derive_outcomes(subjects, diagnoses, deaths, [DEATH, CV], "2020-12-31")
    d, cv = _by_eid(out, "all_cause_death"), _by_eid(out, "cv_death")
    assert d.at["dies_other", "status"] == "event" and d.at["dies_hf", "status"] == "event"
    assert cv.at["dies_other", "status"] == "censored" and cv.at["dies_hf", "status"] == "event"
    assert d.at["none", "status"] == "undated event"  # the undated death is the event itself
    hf = _by_eid(derive_outcomes(subjects, diagnoses, deaths, [HF], "2020-12-31"), "heart_failure")
    assert hf.at["none", "status"] == "undated death"  # follow-up unknown: left out


def test_any_code_is_only_for_deaths():
    with pytest.raises(ValueError, match="only allowed for deaths"):
        OutcomeDefinition.from_config("x", {"icd10": ["*"], "sources": ["diagnoses"]})
