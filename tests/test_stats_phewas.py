"""PheWAS end to end on the synthetic population: tidy table, programmed effects, figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cardiopheno.plots.figures import phewas_figures
from cardiopheno.stats.phecodes import load_phecode_map
from cardiopheno.stats.phewas import run_phewas, top_hits
from cardiopheno.stats.truth import phewas_recovery
from cardiopheno.synth.outcomes import sample_outcomes
from cardiopheno.synth.population import sample_population


@pytest.fixture(scope="module")
def result():
    pop = sample_population(3000, 1).assign(eid=lambda d: d["eid"].astype(str))
    out = sample_outcomes(pop, 1)
    table = run_phewas(
        pop, out.diagnoses, ["LVEDV", "LVEF", "LVM"], load_phecode_map(), min_cases=20
    )
    return table, out


def test_phewas_table_is_tidy_and_corrected_over_all_tests(result):
    table, _ = result
    for col in ["idp", "term", "phecode", "estimate", "se", "p", "q_bh", "p_bonferroni", "n",
                "n_cases", "n_controls", "converged", "method", "odds_ratio", "category"]:  # fmt: skip
        assert col in table.columns
    assert table["converged"].all() and (table["n_cases"] >= 20).all()
    np.testing.assert_allclose(table["odds_ratio"], np.exp(table["estimate"]))
    np.testing.assert_allclose(table["p_bonferroni"], np.minimum(table["p"] * len(table), 1))
    assert table.groupby("idp").size().nunique() == 1  # every IDP against the same phecodes


def test_programmed_effect_is_recovered(result):
    table, out = result
    rec, summary = phewas_recovery(table, out.effects, load_phecode_map(), extra_codes=["I50"])
    lvm_i10 = rec[(rec["idp"] == "LVM") & (rec["icd10"] == "I10")].iloc[0]
    assert lvm_i10["found"] and lvm_i10["covered"]
    assert summary["unrelated_false_positive_rate"] <= 0.05
    assert len(top_hits(table, 5)) <= 5


def test_manhattan_is_drawn_from_the_cached_table(result, tmp_path):
    table, _ = result
    path = tmp_path / "phewas.parquet"
    table.to_parquet(path)
    outs = [tmp_path / "manhattan.png", tmp_path / "manhattan.svg"]
    phewas_figures(path, outs, {"manhattan_labels": 3})
    assert all(p.stat().st_size > 1000 for p in outs)
    assert pd.read_parquet(path).shape == table.shape


def test_tidy_rows_match_statsmodels_including_a_sex_restricted_phecode(result):
    import statsmodels.api as sm

    from cardiopheno.stats.phecodes import case_control, map_diagnoses

    table, out = result
    pop = sample_population(3000, 1).assign(eid=lambda d: d["eid"].astype(str))
    pmap = load_phecode_map()
    cc = case_control(map_diagnoses(out.diagnoses, pmap), pop[["eid", "sex"]], pmap, 1, 20)
    one_sex = table[table["sex_only"] != "both"]
    picks = [table[(table["idp"] == "LVM") & (table["phecode"] == "401.1")].iloc[0]]
    if len(one_sex):
        picks.append(one_sex.iloc[0])
    for row in picks:
        j = cc.phecodes.index(row["phecode"])
        rows = cc.valid[:, j]
        z = (pop[row["idp"]] - pop[row["idp"]].mean()) / pop[row["idp"]].std()
        cols = [z[rows], np.ones(rows.sum()), pop["age"][rows]]
        if row["sex_only"] == "both":
            cols.append(pop["sex"][rows])
        fit = sm.Logit(cc.cases[rows, j].astype(float), np.column_stack(cols)).fit(
            disp=0, tol=1e-12
        )
        np.testing.assert_allclose(
            [row["estimate"], row["se"], row["p"]],
            [fit.params[0], fit.bse[0], fit.pvalues[0]],
            rtol=1e-6,
        )
        assert row["n_cases"] + row["n_controls"] == rows.sum()
