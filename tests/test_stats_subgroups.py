"""Subgroup audit tables (stats.subgroups) and the report's audit section, on tiny frames with
known answers."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from docutils.core import publish_parts

from cardiopheno.report import subgroup_audit_rst
from cardiopheno.stats.subgroups import (
    age_bands,
    by_group,
    qc_failure_by_group,
    sex_groups,
    spread,
)


def test_age_bands_are_ten_year_labels_and_unknown():
    bands = age_bands(pd.Series([40, 49.9, 50, None, 71]))
    assert bands.tolist() == ["40-49", "40-49", "50-59", "unknown", "70-79"]


def test_sex_groups_read_any_coding():
    assert sex_groups(pd.Series(["M", "F", None])).tolist() == ["men", "women", "unknown"]
    assert sex_groups(pd.Series([0, 1])).tolist() == ["women", "men"]


def test_by_group_means_and_the_gap_between_groups():
    frame = pd.DataFrame(
        {"g": ["a", "a", "b", "b", "c"], "dice": [0.9, 0.8, 0.7, 0.7, 0.1],
         "fail": [True, False, False, False, True]}
    )  # fmt: skip
    t = by_group(frame, "g", ["dice", "fail"]).set_index("g")
    assert t["n"].tolist() == [2, 2, 1]
    assert t.loc["a", "dice"] == pytest.approx(0.85) and t.loc["b", "fail"] == 0.0
    gaps = spread(t.reset_index(), ["dice", "fail"])
    assert gaps["dice"] == pytest.approx(0.75)  # c (0.1) to a (0.85)
    # groups below min_n are left out of the gap: c has one subject
    assert spread(t.reset_index(), ["dice"], min_n=2)["dice"] == pytest.approx(0.15)
    assert math.isnan(spread(t.reset_index(), ["dice"], min_n=3)["dice"])


def test_qc_failure_rate_by_sex_and_age_band_counts_subjects_without_covariates():
    qc = pd.DataFrame({"eid": ["1", "2", "3", "4", "5"],
                       "qc_pass": [True, False, True, False, False]})  # fmt: skip
    cov = pd.DataFrame({"eid": [1, 2, 3, 4], "sex": [0, 0, 1, 1], "age": [45, 47, 62, 65]})
    t = qc_failure_by_group(qc, cov)
    sex = t["sex"].set_index("group")
    assert sex.loc["women", ["n", "failed"]].tolist() == [2, 1]
    assert sex.loc["men", "rate_pct"] == pytest.approx(50.0)
    assert sex.loc["unknown", "failed"] == 1  # eid 5 has no covariates
    age = t["age band"].set_index("group")
    assert age.loc["40-49", "rate_pct"] == pytest.approx(50.0)
    assert age.loc["60-69", "n"] == 2


def test_report_audit_section_renders_with_rates_and_gaps():
    qc = pd.DataFrame(
        {"eid": [str(i) for i in range(20)], "qc_pass": [i % 4 != 0 for i in range(20)]}
    )
    cov = pd.DataFrame({"eid": [str(i) for i in range(20)], "sex": [i % 2 for i in range(20)],
                        "age": [45 + (i // 10) * 20 for i in range(20)]})  # fmt: skip
    frame = cov.assign(LVEF=[50 + (i // 10) * 10 for i in range(20)])
    text = subgroup_audit_rst(qc, cov, frame, ["LVEF"], {"LVEF": "%"})
    # women are the even eids: 0, 4, 8, 12, 16 fail -> 50 %; men none fail -> gap 50 points
    assert "sex 50.0" in text
    assert "LVEF (%)" in text and "40-49 (n = 10)" in text and "60-69 (n = 10)" in text
    html = publish_parts(text, writer="html")["html_body"]
    assert "System Message" not in html and "<table" in html
