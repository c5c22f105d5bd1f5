"""The vectorised PheWAS engine against statsmodels Logit and firthmodels on the same data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from firthmodels import FirthLogisticRegression

from cardiopheno.stats.logistic import METHOD_FIRTH, METHOD_ML, fit_pairs


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(42)
    n, k, p = 600, 3, 7
    z = rng.normal(size=(n, k))
    z[rng.random((n, k)) < 0.05] = np.nan  # missing IDP values drop rows per IDP
    age = rng.uniform(45, 80, n)
    sex = rng.integers(0, 2, n)
    covs = np.column_stack([np.ones(n), (age - 62) / 10, sex])
    prev = np.array([0.3, 0.15, 0.08, 0.05, 0.03, 0.2, 0.1])
    eta = np.log(prev / (1 - prev)) + 0.4 * np.nan_to_num(z[:, [0]]) + 0.3 * covs[:, [1]]
    cases = rng.random((n, p)) < 1 / (1 + np.exp(-eta))
    valid = rng.random((n, p)) > rng.uniform(0, 0.3, p)  # exclusion ranges: controls removed
    valid |= cases
    cases &= valid
    return z, covs, cases, valid


def _reference(z, covs, cases, valid, k, j, firth):
    rows = valid[:, j] & np.isfinite(z[:, k])
    x = np.column_stack([z[rows, k], covs[rows]])
    y = cases[rows, j].astype(float)
    if firth:
        # Tolerances this tight can end in "step-halving failed" at the optimum; the estimate is fine.
        warnings.simplefilter("ignore")
        f = FirthLogisticRegression(fit_intercept=False, gtol=1e-10, xtol=1e-10, max_iter=200).fit(
            x, y
        )
        return f.coef_[0], f.bse_[0], f.pvalues_[0], rows.sum()
    f = sm.Logit(y, x).fit(disp=0, tol=1e-12, maxiter=100)
    return f.params[0], f.bse[0], f.pvalues[0], rows.sum()


def test_ordinary_fits_match_statsmodels_logit_within_1e6_relative(data):
    z, covs, cases, valid = data
    res = fit_pairs(z, covs, cases, valid, firth_cases=0, chunk=3)
    assert (res.method == METHOD_ML).all() and res.converged.all()
    for k in range(z.shape[1]):
        for j in range(cases.shape[1]):
            beta, se, p, n = _reference(z, covs, cases, valid, k, j, firth=False)
            np.testing.assert_allclose(
                [res.beta[k, j], res.se[k, j], res.p[k, j]], [beta, se, p], rtol=1e-6
            )
            assert res.n_cases[k, j] + res.n_controls[k, j] == n


def test_exclusions_change_the_fit_and_are_honoured(data):
    z, covs, cases, valid = data
    everyone = np.ones_like(valid)
    with_excl = fit_pairs(z, covs, cases, valid)
    without = fit_pairs(z, covs, cases, everyone)
    assert not np.allclose(with_excl.beta, without.beta)
    assert (with_excl.n_controls < without.n_controls).all()


def test_few_case_pairs_match_firthmodels(data):
    z, covs, cases, valid = data
    res = fit_pairs(z, covs, cases, valid, firth_cases=40, firth_p=1.0)
    firth = res.method == METHOD_FIRTH
    assert firth.any() and (res.method[~firth] == METHOD_ML).all()
    for k, j in zip(*np.nonzero(firth), strict=True):
        assert res.n_cases[k, j] < 40
        beta, se, p, _ = _reference(z, covs, cases, valid, k, j, firth=True)
        np.testing.assert_allclose(
            [res.beta[k, j], res.se[k, j], res.p[k, j]], [beta, se, p], rtol=1e-6
        )


def test_separated_pair_is_refitted_with_firth_and_finite():
    rng = np.random.default_rng(0)
    n = 300
    z = rng.normal(size=(n, 1))
    covs = np.column_stack([np.ones(n), rng.normal(size=n)])
    cases = np.column_stack([z[:, 0] > 1.2, rng.random(n) < 0.2])  # first: complete separation
    valid = np.ones_like(cases)
    res = fit_pairs(z, covs, cases, valid)
    assert res.method[0, 0] == METHOD_FIRTH and res.method[0, 1] == METHOD_ML
    assert np.isfinite(res.beta[0, 0]) and res.beta[0, 0] > 1
    beta, se, _, _ = _reference(z, covs, cases, valid, 0, 0, firth=True)
    np.testing.assert_allclose([res.beta[0, 0], res.se[0, 0]], [beta, se], rtol=1e-5)


def test_pairs_without_cases_are_not_fitted():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(50, 1))
    covs = np.ones((50, 1))
    cases = np.zeros((50, 1), bool)
    res = fit_pairs(z, covs, cases, np.ones_like(cases))
    assert res.method[0, 0] == 0 and np.isnan(res.beta[0, 0]) and not res.converged[0, 0]


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="shape mismatch"):
        fit_pairs(np.zeros((5, 1)), np.ones((4, 1)), np.zeros((5, 2), bool), np.ones((5, 2), bool))


def test_few_case_pairs_get_firth_only_when_the_ordinary_p_is_small(data):
    z, covs, cases, valid = data
    ordinary = fit_pairs(z, covs, cases, valid, firth_cases=0)
    res = fit_pairs(z, covs, cases, valid, firth_cases=40, firth_p=0.05)
    few = ordinary.n_cases < 40
    expected = few & (ordinary.p < 0.05)
    assert expected.any() and (few & ~expected).any()
    np.testing.assert_array_equal(res.method == METHOD_FIRTH, expected)
    np.testing.assert_array_equal(res.beta[~expected], ordinary.beta[~expected])
