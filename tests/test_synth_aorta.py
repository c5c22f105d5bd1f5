"""The synthetic aortic cine: deterministic, anatomically placed, areas and distensibility known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from cardiopheno import ASCENDING_AORTA, DESCENDING_AORTA
from cardiopheno.io.tables import read_table, write_table
from cardiopheno.synth.aorta import (
    AREA_TOLERANCE,
    PressureWave,
    curve_columns,
    distensibility,
    simulate_aorta,
    truth_columns,
)
from cardiopheno.synth.population import AORTA_COEFFICIENTS, sample_population


@pytest.fixture(scope="module")
def pop():
    return sample_population(40, seed=11)


@pytest.fixture(scope="module")
def subjects(pop):
    return [simulate_aorta(pop.iloc[i], 11, i) for i in range(3)]


def test_generator_is_deterministic_per_seed_and_index(pop, subjects):
    again = simulate_aorta(pop.iloc[0], 11, 0)
    assert np.array_equal(again.image, subjects[0].image)
    assert np.array_equal(again.labels, subjects[0].labels)
    assert again.truth == subjects[0].truth
    other = simulate_aorta(pop.iloc[0], 12, 0)
    assert not np.array_equal(other.image, subjects[0].image)


def test_cine_shape_types_and_header(subjects):
    for s in subjects:
        nx, ny, nz, nt = s.image.shape
        assert s.image.dtype == np.int16 and s.labels.dtype == np.uint8
        assert s.labels.shape == s.image.shape and nz == 1 and nt == 100
        assert 192 <= nx <= 240 and 176 <= ny <= 240
        assert set(np.unique(s.labels)) == {0, ASCENDING_AORTA, DESCENDING_AORTA}
        assert 1.6 <= s.zooms[0] == s.zooms[1] <= 1.8
        assert s.zooms[3] * nt == pytest.approx(s.truth["rr_ms"], rel=1e-5)
        assert np.linalg.det(s.affine[:3, :3]) > 0


def test_ascending_aorta_is_anterior_and_descending_posterior_left(subjects):
    for s in subjects:
        world = {}
        for label in (ASCENDING_AORTA, DESCENDING_AORTA):
            i, j = np.nonzero(s.labels[:, :, 0, 0] == label)
            world[label] = s.affine @ np.array([i.mean(), j.mean(), 0.0, 1.0])
        aao, dao = world[ASCENDING_AORTA], world[DESCENDING_AORTA]
        assert aao[1] - dao[1] > 40  # RAS +y anterior: AAo in front by several cm
        assert dao[0] < aao[0]  # RAS +x right: DAo to the patient's left


def test_blood_is_bright_against_the_lungs(subjects):
    s = subjects[0]
    frame = s.image[:, :, 0, 0].astype(float)
    blood = frame[s.labels[:, :, 0, 0] > 0].mean()
    assert blood > 2.0 * np.median(frame)


def test_voxelised_areas_agree_with_analytic_within_stated_tolerance(subjects):
    for s in subjects:
        c = s.curves
        for v in ("AAo", "DAo"):
            rel = np.abs(c[f"{v}_area_mm2"] / c[f"{v}_area_mm2_analytic"] - 1.0)
            assert rel.max() <= AREA_TOLERANCE, (v, rel.max())
            frac = np.abs(c[f"{v}_area_mm2_fractional"] / c[f"{v}_area_mm2_analytic"] - 1.0)
            assert frac.max() < 0.01  # partial-volume coverage is near exact
            t = s.truth
            for end in ("max", "min"):
                got, want = t[f"{v}_{end}_area"], t[f"{v}_{end}_area_analytic"]
                assert got == pytest.approx(want, rel=AREA_TOLERANCE)


def test_analytic_truth_is_the_population_distensibility(pop, subjects):
    for i, s in enumerate(subjects):
        t, row = s.truth, pop.iloc[i]
        for v in ("AAo", "DAo"):
            d = distensibility(
                t[f"{v}_max_area_analytic"], t[f"{v}_min_area_analytic"], t["central_pp"]
            )
            assert d == pytest.approx(row[f"{v}_distensibility"], rel=1e-9)
            assert t[f"{v}_distensibility_analytic"] == pytest.approx(d, rel=1e-9)
            # 100 frames sample the continuous extremes closely
            c = s.curves[f"{v}_area_mm2_analytic"]
            assert c.max() == pytest.approx(t[f"{v}_max_area_analytic"], rel=2e-3)
            assert c.min() == pytest.approx(t[f"{v}_min_area_analytic"], rel=2e-3)


def test_pressure_wave_shape():
    w = PressureWave(rr_ms=1000.0, onset_ms=80.0, upstroke_ms=100.0, ejection_ms=300.0)
    t = np.linspace(0.0, 1000.0, 2001)
    y = w(t)
    assert y.min() >= 0.0 and y.max() <= 1.0
    assert w(np.array([80.0]))[0] == pytest.approx(0.0, abs=1e-3)  # the foot
    assert w(np.array([180.0]))[0] == pytest.approx(1.0, abs=0.02)  # the systolic peak
    assert np.all(np.diff(y[(t > 82) & (t < 175)]) > 0)  # the upstroke rises throughout
    notch = y[(t > 370) & (t < 420)]
    assert notch.min() < y[t == 340][0] and notch.min() < notch[-1]  # the dicrotic dip
    assert np.all(np.diff(y[(t > 500) & (t < 1000)]) < 0)  # diastolic decay


def test_population_central_pp_and_age_trend_of_distensibility():
    pop = sample_population(20000, seed=4)
    brachial = pop["sbp"] - pop["dbp"]
    amp = brachial / pop["central_pp"]
    assert (pop["central_pp"] < brachial).mean() > 0.99
    assert amp[pop["age"] < 55].mean() > amp[pop["age"] > 70].mean()  # amplification falls
    for v in ("AAo", "DAo"):
        name = f"{v}_distensibility"
        assert (pop[name] > 0).all()
        fit = smf.ols(f"{name} ~ age + sex", data=pop).fit(cov_type="HC3")
        for term in ("age", "sex"):
            true = AORTA_COEFFICIENTS[name][term]
            assert abs(fit.params[term] - true) < 4 * fit.bse[term], (name, term)
    young = pop["age"] < 50
    assert 4.5 < pop.loc[young, "AAo_distensibility"].mean() < 7.5
    assert 1.0 < pop.loc[pop["age"] > 75, "AAo_distensibility"].mean() < 3.0
    d_aao = np.sqrt(4 * pop["AAo_min_area"] / np.pi)
    assert 28 < d_aao.median() < 36 and 20 < np.sqrt(4 * pop["DAo_min_area"] / np.pi).median() < 26


def test_truth_and_curves_are_writable_as_documented_tables(subjects, tmp_path):
    truth = pd.DataFrame([s.truth for s in subjects])
    curves = pd.concat([s.curves for s in subjects], ignore_index=True)
    write_table(truth, tmp_path / "aorta_truth.parquet", columns=truth_columns())
    write_table(curves, tmp_path / "aorta_curves.parquet", columns=curve_columns())
    back = read_table(tmp_path / "aorta_truth.parquet")
    assert (
        back["AAo_distensibility_analytic"].tolist()
        == truth["AAo_distensibility_analytic"].tolist()
    )


def test_coverage_is_the_partial_volume_behind_labels_and_fractional_areas(subjects):
    for s in subjects:
        assert s.coverage.shape == (*s.labels.shape, 2)
        assert float(s.coverage.min()) >= 0.0 and float(s.coverage.max()) <= 1.0
        px2 = s.zooms[0] * s.zooms[1]
        for vessel, label in (("AAo", ASCENDING_AORTA), ("DAo", DESCENDING_AORTA)):
            share = s.coverage[..., label - 1].astype(np.float64)
            differ = (share >= 0.5) != (s.labels == label)  # float16 rounds shares near 0.5
            assert (np.abs(share[differ] - 0.5) < 1e-3).all()
            np.testing.assert_allclose(  # float16 shares: within a hundredth of a pixel each
                share.sum(axis=(0, 1, 2)) * px2,
                s.curves[f"{vessel}_area_mm2_fractional"],
                rtol=2e-3,
            )
