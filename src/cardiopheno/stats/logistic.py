"""Vectorised logistic regression for PheWAS: every (IDP, phecode) pair fitted at once.

Why hand-written: a PheWAS at UK Biobank scale is 82 IDPs x ~1,500 phecodes = 123,000 logistic
fits on 27,000 subjects. One ``statsmodels`` Logit call per pair takes ~17-22 ms (35+ minutes);
the same Newton-Raphson iterations written as batched matrix products over phecodes share the
design matrix and run one to two orders of magnitude faster. The engine is checked against
``statsmodels.discrete.discrete_model.Logit`` (ordinary fits) and ``firthmodels`` (penalised fits)
on the same data in ``tests/test_stats_logistic.py``.

Model per pair (k, p): ``logit P(y_p = 1) = b_k * z_k + C @ g``, where ``C`` holds the intercept
and the shared covariates, on the rows where ``valid[:, p]`` is true (cases plus eligible controls,
exclusion ranges and the other sex removed) and the IDP is not missing.

The key trick: for a fixed IDP the design ``X = [z_k, C]`` is shared by all phecodes, so the
information matrices of all phecodes are one GEMM ``F.T @ W`` with ``F`` the n x q(q+1)/2 products
of design columns and ``W`` the n x P matrix of IRLS weights.

Every pair is first fitted by ordinary maximum likelihood. A pair is refitted by Firth's method
when that fit is unreliable: no convergence, a non-finite or implausibly large IDP coefficient (a
sign of separation), or few cases (``firth_cases``) together with an ordinary p value below
``firth_p`` (the rule of REGENIE, Mbatchou et al. 2021: with few cases the Wald test of the
ordinary fit is miscalibrated in the tail, which is where it matters; ``firth_p = 1`` refits every
few-case pair). Flagged pairs are refitted with Firth's penalised likelihood (Firth 1993; Heinze & Schemper 2002), also
batched, with the step-halving of logistf/firthmodels. Pairs whose Firth fit also fails are
reported with ``converged = False``. The batched Newton-Raphson itself is
:mod:`cardiopheno.stats.newton`; here the null-model start shared by all IDPs and the driver.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats as sps

from cardiopheno.stats.newton import EXCLUDED_OFFSET, Design, Problem, newton

log = logging.getLogger(__name__)

METHOD_ML, METHOD_FIRTH = 1, 2
METHOD_NAMES = {0: "not fitted", METHOD_ML: "logistic", METHOD_FIRTH: "firth"}


@dataclass
class BatchResult:
    """Per-pair results, arrays of shape (n_idps, n_phecodes)."""

    beta: np.ndarray
    se: np.ndarray
    p: np.ndarray
    converged: np.ndarray
    method: np.ndarray  # 0 not fitted, 1 ordinary ML, 2 Firth
    n_cases: np.ndarray
    n_controls: np.ndarray
    n_iter: np.ndarray


class _SharedStart:
    """Score and information of every (IDP, phecode) pair at the common start b0 = [0, g_null].

    At b0 the linear predictor does not depend on the IDP (its coefficient is 0), so mu, the
    weights and the residuals of the null model are shared by all IDPs: the first Newton step of
    every pair needs only two wide GEMMs against precomputed IDP x covariate products, instead of
    one elementwise pass per IDP (about a quarter of the work of a typical 4-iteration fit).
    Missing IDP values are handled exactly: z is 0 there and the covariate parts are weighted by
    the per-IDP validity.
    """

    def __init__(self, z0: torch.Tensor, v: torch.Tensor, c: torch.Tensor):
        n, k = z0.shape
        self.k, self.cq = k, c.shape[1]
        self.ct = c.T.contiguous()
        iu = torch.triu_indices(self.cq, self.cq)
        self.iu = iu
        fc = c[:, iu[0]] * c[:, iu[1]]  # n x Tc
        self.t = fc.shape[1]
        # score columns: [z_k] + [c_j * v_k]; information columns: [z_k^2] + [z_k c_j] + [fc_t v_k]
        self.s_mat = torch.cat([z0, (c[:, :, None] * v[:, None, :]).reshape(n, -1)], 1)
        self.h_mat = torch.cat(
            [
                z0 * z0,
                (c[:, :, None] * z0[:, None, :]).reshape(n, -1),
                (fc[:, :, None] * v[:, None, :]).reshape(n, -1),
            ],
            1,
        )

    def cross(self, y: torch.Tensor) -> torch.Tensor:
        """X_k' y for every IDP k (K, A, q), rows with a missing IDP value left out."""
        a, k, cq = y.shape[0], self.k, self.cq
        s = y @ self.s_mat
        out = torch.empty((k, a, cq + 1), dtype=y.dtype)
        out[:, :, 0] = s[:, :k].T
        out[:, :, 1:] = s[:, k:].reshape(a, cq, k).permute(2, 0, 1)
        return out

    def compute(self, y: torch.Tensor, offset: torch.Tensor, g_null: torch.Tensor):
        """Scores (K, A, q) and information matrices (K, A, q, q) for a chunk of A phecodes."""
        mu = torch.sigmoid_(torch.addmm(offset, g_null, self.ct))
        resid = y - mu
        w = mu.addcmul_(mu, mu, value=-1.0)
        a, k, cq = y.shape[0], self.k, self.cq
        s = resid @ self.s_mat  # A x K(1 + c)
        h = w @ self.h_mat  # A x K(1 + c + Tc)
        score = torch.empty((k, a, cq + 1), dtype=y.dtype)
        score[:, :, 0] = s[:, :k].T
        score[:, :, 1:] = s[:, k:].reshape(a, cq, k).permute(2, 0, 1)
        info = torch.empty((k, a, cq + 1, cq + 1), dtype=y.dtype)
        info[:, :, 0, 0] = h[:, :k].T
        zc = h[:, k : k + k * cq].reshape(a, cq, k).permute(2, 0, 1)
        info[:, :, 0, 1:] = zc
        info[:, :, 1:, 0] = zc
        cc = h[:, k + k * cq :].reshape(a, self.t, k).permute(2, 0, 1)
        info[:, :, 1 + self.iu[0], 1 + self.iu[1]] = cc
        info[:, :, 1 + self.iu[1], 1 + self.iu[0]] = cc
        return score, info


def fit_pairs(
    z: np.ndarray,
    covariates: np.ndarray,
    cases: np.ndarray,
    valid: np.ndarray,
    firth_cases: int = 0,
    firth_p: float = 0.05,
    tol: float = 1e-6,
    max_iter: int = 50,
    separation_beta: float = 10.0,
    chunk: int = 128,
    threads: int | None = None,
) -> BatchResult:
    """Fit ``cases[:, p] ~ z[:, k] + covariates`` for every IDP k and phecode p.

    Parameters
    ----------
    z: n x K IDP values (usually z-scores); NaN marks a missing value (row dropped for that IDP).
    covariates: n x c design of the shared terms *including* the intercept column; finite.
    cases: n x P bool outcome; valid: n x P bool rows used for each phecode.
    firth_cases, firth_p: pairs with fewer cases than ``firth_cases`` whose ordinary p value is
        below ``firth_p`` are refitted with Firth's method.
    tol: stop when the largest Newton step is below this. Newton-Raphson converges
        quadratically, so the returned iterate (one step past a change of ``tol``) is accurate to
        about ``tol**2`` (1e-12 at the default), and its standard errors are evaluated at it: the
        results agree with statsmodels (tol 1e-8, one more iteration) to ~1e-10 relative.
    separation_beta: an ordinary fit whose |IDP coefficient| exceeds this (log-OR per unit of z)
        is treated as separated and refitted with Firth's method.
    chunk: phecodes per batch; small batches keep the working set in the CPU cache.
    """
    if threads:
        torch.set_num_threads(int(threads))
    z, c, cases, valid = _checked_inputs(z, covariates, cases, valid)
    k_idps, p_codes = z.shape[1], cases.shape[1]
    res = _empty_result((k_idps, p_codes))
    opts = _FitOptions(firth_cases, firth_p, tol, max_iter, separation_beta)
    ct = torch.from_numpy(c)
    null_design = Design(ct)
    z_valid = np.isfinite(z)
    designs = [
        Design(torch.cat([torch.from_numpy(np.where(z_valid[:, k], z[:, k], 0.0))[:, None], ct], 1))
        for k in range(k_idps)
    ]
    v_mat = torch.from_numpy(z_valid.astype(np.float64))
    v_rows = [v_mat[:, k].contiguous() for k in range(k_idps)]
    shared = _SharedStart(
        torch.from_numpy(np.where(z_valid, z, 0.0)),
        torch.from_numpy(z_valid.astype(np.float64)),
        ct,
    )
    cases_t = np.ascontiguousarray(cases.T)  # P x n
    valid_t = np.ascontiguousarray(valid.T)
    for start in range(0, p_codes, chunk):
        sl = slice(start, min(start + chunk, p_codes))
        begin = _chunk_start(cases_t[sl], valid_t[sl], null_design, shared, v_mat)
        for k in range(k_idps):
            v_row = None if z_valid[:, k].all() else v_rows[k]
            fits = _fit_idp_chunk(k, designs[k], begin, v_row, opts)
            _store(res, k, sl, fits)
    with np.errstate(invalid="ignore", divide="ignore"):
        res.p = 2 * sps.norm.sf(np.abs(res.beta / res.se))
    return res


@dataclass(frozen=True)
class _FitOptions:
    """fit_pairs' settings that every pair's fit uses."""

    firth_cases: int
    firth_p: float
    tol: float
    max_iter: int
    separation_beta: float


def _checked_inputs(z, covariates, cases, valid):
    """The inputs as float64 / bool arrays, their shapes and the covariates' finiteness checked."""
    z = np.asarray(z, dtype=np.float64)
    c = np.asarray(covariates, dtype=np.float64)
    cases = np.asarray(cases, dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    n = z.shape[0]
    p_codes = cases.shape[1]
    if c.shape[0] != n or cases.shape != (n, p_codes) or valid.shape != cases.shape:
        raise ValueError(
            f"shape mismatch: z {z.shape}, covariates {c.shape}, cases {cases.shape}, "
            f"valid {valid.shape}"
        )
    if not np.isfinite(c).all():
        raise ValueError("covariates contain missing values: mark such rows invalid and fill them")
    return z, c, cases, valid


def _empty_result(shape: tuple[int, int]) -> BatchResult:
    """Every pair not fitted yet: NaN estimates, zero counts."""
    return BatchResult(
        beta=np.full(shape, np.nan),
        se=np.full(shape, np.nan),
        p=np.full(shape, np.nan),
        converged=np.zeros(shape, bool),
        method=np.zeros(shape, np.int8),
        n_cases=np.zeros(shape, np.int64),
        n_controls=np.zeros(shape, np.int64),
        n_iter=np.zeros(shape, np.int32),
    )


@dataclass
class _ChunkStart:
    """A chunk of A phecodes: outcomes and offsets (A x n), the common start b0 = [0, g_null] of
    every pair's fit with its score and information's Cholesky factor (K, A, ...), X_k'y per
    IDP, the valid rows and cases of each pair (A x K) and an n-wide buffer."""

    y: torch.Tensor
    offset: torch.Tensor
    b0: torch.Tensor
    score0: torch.Tensor
    chol0: torch.Tensor
    err0: torch.Tensor
    xty: torch.Tensor
    n_valid: torch.Tensor
    n_case: torch.Tensor
    buf: torch.Tensor


def _chunk_start(cases_t, valid_t, null_design, shared, v_mat) -> _ChunkStart:
    """Fit each phecode's covariate-only (null) model and the shared first Newton quantities."""
    m_all = torch.from_numpy(valid_t.astype(np.float64))
    y_all = torch.from_numpy(cases_t.astype(np.float64)) * m_all
    off_all = torch.from_numpy(np.where(valid_t, 0.0, EXCLUDED_OFFSET))
    # Start values: the covariate-only (null) model of each phecode, IDP coefficient 0.
    ybar = (y_all.sum(1) / m_all.sum(1).clamp(min=1)).clamp(1e-6, 1 - 1e-6)
    g0 = torch.zeros((y_all.shape[0], null_design.q), dtype=torch.float64)
    g0[:, 0] = torch.logit(ybar)
    null_prob = Problem(null_design, y_all, off_all)
    g_null, ok_null, _, _ = newton(null_design, null_prob, g0, False, 1e-6, 25)
    g_null = torch.where(ok_null[:, None] & torch.isfinite(g_null), g_null, g0)
    b0 = torch.cat([torch.zeros((g_null.shape[0], 1), dtype=torch.float64), g_null], 1)
    score0, info0 = shared.compute(y_all, off_all, g_null)
    chol0, err0 = torch.linalg.cholesky_ex(info0)
    return _ChunkStart(
        y=y_all,
        offset=off_all,
        b0=b0,
        score0=score0,
        chol0=chol0,
        err0=err0,
        xty=shared.cross(y_all),  # K x A x q: X_k'y for every IDP, one GEMM
        n_valid=m_all @ v_mat,  # A x K: valid rows of each pair
        n_case=y_all @ v_mat,
        buf=torch.empty_like(off_all),
    )


def _fit_idp_chunk(k: int, design: Design, begin: _ChunkStart, v_row, opts: _FitOptions):
    """IDP k against a chunk of phecodes: ordinary fits of the pairs with cases and controls,
    then Firth refits of the unreliable ones. ``v_row``: the IDP's valid rows, None when it has
    no missing value. Returns (n_cases, n_controls, b, var, converged, method, iterations)."""
    if v_row is None:
        y, off = begin.y, begin.offset
    else:
        y = begin.y * v_row
        off = torch.where(v_row > 0, begin.offset, EXCLUDED_OFFSET)
    n_cases = begin.n_case[:, k]
    n_controls = begin.n_valid[:, k] - n_cases
    fittable = (n_cases > 0) & (n_controls > 0)
    want_firth = torch.zeros_like(fittable)
    a = y.shape[0]
    b = torch.full_like(begin.b0, float("nan"))
    var = torch.full_like(begin.b0, float("nan"))
    conv = torch.zeros(a, dtype=torch.bool)
    method = torch.zeros(a, dtype=torch.int8)
    iters = torch.zeros(a, dtype=torch.int32)
    ml = fittable.nonzero().squeeze(1)
    if ml.numel():
        if ml.numel() == y.shape[0]:
            prob = Problem(design, None, off, begin.xty[k], begin.buf, keep_y=False)
        else:
            prob = Problem(design, None, off[ml], begin.xty[k, ml], begin.buf, keep_y=False)
        first = (begin.score0[k, ml], begin.chol0[k, ml], begin.err0[k, ml] == 0)
        b_ml, c_ml, it_ml, v_ml = newton(
            design, prob, begin.b0[ml], False, opts.tol, opts.max_iter, first=first
        )
        b[ml], conv[ml], iters[ml], var[ml] = b_ml, c_ml, it_ml, v_ml
        method[ml] = METHOD_ML
        unreliable = _unreliable(b_ml, c_ml, v_ml, n_cases[ml], opts)
        want_firth[ml[unreliable]] = True
    fi = want_firth.nonzero().squeeze(1)
    if fi.numel():
        prob = Problem(design, y[fi], off[fi])
        b_f, c_f, it_f, v_f = newton(design, prob, begin.b0[fi], True, opts.tol, 4 * opts.max_iter)
        b[fi], conv[fi], iters[fi], var[fi] = b_f, c_f, it_f, v_f
        method[fi] = METHOD_FIRTH
    return n_cases, n_controls, b, var, conv, method, iters


def _unreliable(b_ml, c_ml, v_ml, n_cases, opts: _FitOptions) -> torch.Tensor:
    """Ordinary fits to refit by Firth's method: not converged, a non-finite or implausibly
    large IDP coefficient, or few cases with a small ordinary p value."""
    unreliable = ~c_ml | ~(b_ml[:, 0].abs() <= opts.separation_beta)
    if opts.firth_cases > 0:
        wald = (b_ml[:, 0] / torch.sqrt(v_ml[:, 0])).abs().numpy()
        p_ml = torch.from_numpy(2 * sps.norm.sf(wald))
        unreliable |= (n_cases < opts.firth_cases) & ~(p_ml >= opts.firth_p)
    return unreliable


def _store(res: BatchResult, k: int, sl: slice, fits) -> None:
    """Write IDP k's fits of the chunk ``sl`` of phecodes into ``res``."""
    n_cases, n_controls, b, var, conv, method, iters = fits
    res.n_cases[k, sl] = n_cases.numpy().astype(np.int64)
    res.n_controls[k, sl] = n_controls.numpy().astype(np.int64)
    res.beta[k, sl] = b[:, 0].numpy()
    res.se[k, sl] = torch.sqrt(var[:, 0]).numpy()
    res.converged[k, sl] = conv.numpy()
    res.method[k, sl] = method.numpy()
    res.n_iter[k, sl] = iters.numpy()
