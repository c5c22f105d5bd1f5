"""UK Biobank showcase-style table -> covariates, diagnoses, deaths (generated table, known answers)."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
import yaml

from cardiopheno.io import cli as io_cli
from cardiopheno.io.ukbb import normalise_icd10, ukbb_to_cohort_tables

NAN = ""  # missing cells are empty in showcase CSVs


def showcase_rows() -> list[dict]:
    """Three participants covering the cases; every expected value is written out by hand below."""
    return [
        {  # complete: two automated BP readings, two diagnoses (undotted and dotted), alive
            "eid": "1000011", "31-0.0": "1", "21003-2.0": "63", "53-2.0": "2016-03-14",
            "50-2.0": "178", "21002-2.0": "81.5",
            "4080-2.0": "141", "4080-2.1": "137", "4079-2.0": "88", "4079-2.1": "84",
            "93-2.0": "150", "94-2.0": "95", "102-2.0": "62", "102-2.1": "66",
            "41270-0.0": "I10", "41280-0.0": "2009-06-01",
            "41270-0.1": "I50.0", "41280-0.1": "2019-11-20",
            "41270-0.2": NAN, "41280-0.2": NAN,
            "40000-0.0": NAN, "40001-0.0": NAN,
            "12678-2.0": "42", "12678-2.1": "47",
        },
        {  # no automated BP (manual fallback), height "do not know" (-1), placeholder diagnosis date, died
            "eid": "1000022", "31-0.0": "0", "21003-2.0": "71", "53-2.0": "2017-09-02",
            "50-2.0": "-1", "21002-2.0": "64.2",
            "4080-2.0": NAN, "4080-2.1": NAN, "4079-2.0": NAN, "4079-2.1": NAN,
            "93-2.0": "128", "94-2.0": "76", "102-2.0": "-3", "102-2.1": "70",
            "41270-0.0": "E119", "41280-0.0": "1900-01-01",
            "41270-0.1": "I219", "41280-0.1": "2020-02-29",
            "41270-0.2": "i21.9", "41280-0.2": "2020-02-29",  # duplicate once normalised
            "40000-0.0": "2021-05-07", "40001-0.0": "I21.9",
            "12678-2.0": "-1", "12678-2.1": "38",
        },
        {  # one automated reading, sex "prefer not to answer", nothing else
            "eid": "1000033", "31-0.0": "-3", "21003-2.0": NAN, "53-2.0": NAN,
            "50-2.0": "165", "21002-2.0": "-818",
            "4080-2.0": NAN, "4080-2.1": "119", "4079-2.0": NAN, "4079-2.1": "71",
            "93-2.0": NAN, "94-2.0": NAN, "102-2.0": NAN, "102-2.1": NAN,
            "41270-0.0": NAN, "41280-0.0": NAN, "41270-0.1": NAN, "41280-0.1": NAN,
            "41270-0.2": NAN, "41280-0.2": NAN,
            "40000-0.0": NAN, "40001-0.0": NAN,
        },
    ]  # fmt: skip


@pytest.fixture
def showcase(tmp_path):
    path = tmp_path / "ukb_showcase.csv"
    df = pd.DataFrame(showcase_rows())
    df["20001-0.0"] = "1065"  # an unrelated field: never read
    df.to_csv(path, index=False)
    return path


def test_covariates_average_readings_and_drop_negative_codes(showcase):
    cov, _, _ = ukbb_to_cohort_tables(showcase)
    cov = cov.set_index("eid")
    a, b, c = cov.loc["1000011"], cov.loc["1000022"], cov.loc["1000033"]
    assert (a["age"], a["sex"], a["height_cm"], a["weight_kg"]) == (63, 1, 178, 81.5)
    assert a["sbp"] == pytest.approx(139.0) and a["dbp"] == pytest.approx(86.0)  # automated mean
    assert a["heart_rate"] == pytest.approx(64.0)
    assert a["imaging_date"] == pd.Timestamp("2016-03-14")
    assert np.isnan(b["height_cm"])  # -1 do not know
    assert (b["sbp"], b["dbp"]) == (128, 76)  # manual fallback
    assert b["heart_rate"] == 70  # -3 dropped, the other reading kept
    assert c["sex"] is pd.NA and np.isnan(c["weight_kg"]) and np.isnan(c["age"])
    assert (c["sbp"], c["dbp"]) == (119, 71)
    assert pd.isna(c["imaging_date"])


def test_central_pulse_pressure_is_the_mean_of_field_12678_instances_2_0_and_2_1(showcase):
    cov = ukbb_to_cohort_tables(showcase)[0].set_index("eid")["central_pp"]
    assert cov["1000011"] == pytest.approx(44.5)  # (42 + 47) / 2
    assert cov["1000022"] == 38  # -1 (do not know) dropped, the other reading kept
    assert np.isnan(cov["1000033"])  # no pulse-wave analysis


def test_diagnoses_are_long_undotted_and_dated(showcase):
    _, dx, _ = ukbb_to_cohort_tables(showcase)
    got = {
        (r.eid, r.icd10, None if pd.isna(r.date) else r.date.strftime("%Y-%m-%d"))
        for r in dx.itertuples()
    }
    assert got == {
        ("1000011", "I10", "2009-06-01"),
        ("1000011", "I500", "2019-11-20"),
        ("1000022", "E119", None),  # 1900-01-01 is UK Biobank's "date unknown"
        ("1000022", "I219", "2020-02-29"),
    }
    assert list(dx.columns) == ["eid", "icd10", "date"]


def test_deaths_take_date_and_underlying_cause(showcase):
    _, _, deaths = ukbb_to_cohort_tables(showcase)
    assert deaths.to_dict("records") == [
        {"eid": "1000022", "date": pd.Timestamp("2021-05-07"), "icd10": "I219"}
    ]


def test_icd10_normalisation():
    assert normalise_icd10("I50.0") == "I500"
    assert normalise_icd10(" i500 ") == "I500"
    assert normalise_icd10("I50.0 Congestive heart failure") == "I500"
    assert (
        normalise_icd10("-3") == "" and normalise_icd10(np.nan) == "" and normalise_icd10("") == ""
    )


def test_field_map_from_config_overrides_defaults(showcase):
    cov, _, _ = ukbb_to_cohort_tables(
        showcase, {"covariates": {"sbp": ["93-2.0"]}, "fallbacks": {"sbp": []}}
    )
    assert cov.set_index("eid").loc["1000011", "sbp"] == 150


def test_cli_writes_the_three_cohort_tables(showcase, tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        yaml.safe_dump({"inputs": {"ukbb": {"covariates": {"heart_rate": ["102-2.1"]}}}})
    )
    parser = argparse.ArgumentParser()
    io_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["ukbb-tables", str(showcase), "--out", str(tmp_path / "out"), "--config", str(cfg)]
    )
    assert args.func(args) == 0
    cov = pd.read_csv(tmp_path / "out" / "covariates.csv", dtype={"eid": str})
    assert cov.columns.tolist() == [
        "eid", "age", "sex", "height_cm", "weight_kg", "sbp", "dbp", "heart_rate", "imaging_date",
        "central_pp",
    ]  # fmt: skip
    assert cov.set_index("eid").loc["1000011", "central_pp"] == 44.5
    assert cov.set_index("eid").loc["1000011", "heart_rate"] == 66
    assert cov.set_index("eid").loc["1000011", "imaging_date"] == "2016-03-14"
    dx = pd.read_csv(tmp_path / "out" / "diagnoses.csv", dtype=str)
    assert set(dx["icd10"]) == {"I10", "I500", "E119", "I219"}
    deaths = pd.read_csv(tmp_path / "out" / "deaths.csv", dtype=str)
    assert deaths.to_dict("records") == [{"eid": "1000022", "date": "2021-05-07", "icd10": "I219"}]
