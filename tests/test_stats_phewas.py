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
