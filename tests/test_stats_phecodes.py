"""ICD-10 to phecode mapping: the pyphewas map, exclusions, sex restriction and minimum counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cardiopheno.stats.phecodes import (
    case_control,
    load_phecode_map,
    map_diagnoses,
    normalise_icd10,
)


@pytest.fixture(scope="module")
def pmap():
    return load_phecode_map("phecode1.2")


def test_icd10_codes_are_normalised_without_dots_or_filler():
    got = normalise_icd10(pd.Series(["I21.4", "i214", "I10X", " e11 "])).tolist()
    assert got == ["I214", "I214", "I10", "E11"]


def test_map_comes_from_pyphewas_with_hierarchy_and_exclusions(pmap):
    info = pmap.info.set_index("phecode")
    assert info.at["401.1", "description"] == "Essential hypertension"
    assert info.at["401.1", "category"] == "circulatory system"
    assert "401" in info.at["401.1", "exclusions"]
    assert info.at["185", "sex"] == 1  # prostate cancer: men only
    counts = map_diagnoses(
        pd.DataFrame({"eid": ["a"], "icd10": ["I10"], "date": ["2020-01-01"]}), pmap
    )
    assert set(counts["phecode"]) == {"401", "401.1"}  # leaf and its parent


def test_unknown_fourth_character_falls_back_to_parent_code(pmap):
    diag = pd.DataFrame({"eid": ["a", "b"], "icd10": ["I219", "I10"], "date": ["2020-01-01"] * 2})
    counts = map_diagnoses(diag, pmap)
    assert "411.2" in set(counts.loc[counts["eid"] == "a", "phecode"])


def _subjects(n_female, n_male):
    eids = [f"s{i}" for i in range(n_female + n_male)]
    return pd.DataFrame({"eid": eids, "sex": [0] * n_female + [1] * n_male})


def test_cases_controls_exclusions_and_minimum_counts(pmap):
    subjects = _subjects(30, 30)
    rows = []
    for i in range(25):  # 25 cases of essential hypertension (I10), two records each for s0..s4
        rows.append((f"s{i}", "I10", "2020-01-01"))
        if i < 5:
            rows.append((f"s{i}", "I10", "2021-01-01"))
    rows.append(("s40", "I11.9", "2020-01-01"))  # hypertensive heart disease: excluded control
    rows.append(("s41", "I10", "2020-01-01"))  # 26th I10 case
    diag = pd.DataFrame(rows, columns=["eid", "icd10", "date"])
    counts = map_diagnoses(diag, pmap)
    cc = case_control(counts, subjects, pmap, min_code_count=1, min_cases=20)
    j = cc.phecodes.index("401.1")
    assert cc.cases[:, j].sum() == 26
    s40 = list(cc.eids).index("s40")
    assert not cc.valid[s40, j]  # exclusion range (401.21 -> 401) removes it from the controls
    assert cc.valid[list(cc.eids).index("s50"), j]  # an unrelated subject is a control
    assert cc.info.set_index("phecode").at["401.1", "n_controls"] == 60 - 26 - 1
    # Two records needed: only s0..s4 are cases (5 < 20: not tested); one-record subjects excluded.
    cc2 = case_control(counts, subjects, pmap, min_code_count=2, min_cases=5)
    j2 = cc2.phecodes.index("401.1")
    assert cc2.cases[:, j2].sum() == 5
    assert not cc2.valid[list(cc2.eids).index("s10"), j2]
    assert (
        "401.1" not in case_control(counts, subjects, pmap, min_code_count=2, min_cases=20).phecodes
    )


def test_sex_restricted_phecode_uses_one_sex(pmap):
    subjects = _subjects(30, 30)
    diag = pd.DataFrame(
        {"eid": [f"s{i}" for i in range(30, 55)] + ["s0"], "icd10": "C61", "date": "2020-01-01"}
    )
    counts = map_diagnoses(diag, pmap)  # C61 prostate cancer; s0 (a woman) is a coding error
    cc = case_control(counts, subjects, pmap, min_code_count=1, min_cases=20)
    j = cc.phecodes.index("185")
    women = np.asarray(subjects["sex"] == 0)
    assert not cc.valid[women, j].any() and not cc.cases[women, j].any()
    assert cc.cases[:, j].sum() == 25


def test_three_character_code_listed_only_by_subcodes_maps_to_their_shared_phecodes(pmap):
    # A41 (other sepsis) is listed only as A41.0, A41.1, ...: all map to 038 (septicemia).
    diag = pd.DataFrame({"eid": ["a", "b"], "icd10": ["A41", "E78"], "date": ["2020-01-01"] * 2})
    counts = map_diagnoses(diag, pmap)
    assert set(counts.loc[counts["eid"] == "a", "phecode"]) == {"038"}
    # E78's subcodes map to different phecodes (272.1, 277.5, 759): no common phecode, unmapped.
    assert "b" not in set(counts["eid"])
