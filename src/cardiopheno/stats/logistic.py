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
reported with ``converged = False``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats as sps

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


class _Design:
    """X = [z, C] for one IDP, with the upper-triangle column products used for X'WX.

    Outcome-side matrices are stored phecode-major (A x n, one contiguous row per phecode) so that
    selecting the phecodes still iterating is a cheap row gather.
    """

    def __init__(self, x: torch.Tensor):
        self.x = x
        self.xt = x.T.contiguous()
        q = x.shape[1]
        self.q = q
        iu = torch.triu_indices(q, q)
        self.iu = iu
        self.f = x[:, iu[0]] * x[:, iu[1]]  # n x T
        # Multiplicity of each upper-triangle entry in a full symmetric quadratic form.
        self.mult = torch.where(iu[0] == iu[1], 1.0, 2.0).to(x.dtype)

    def info(self, w: torch.Tensor) -> torch.Tensor:
        """X' diag(w_a) X for every row a of ``w`` (A x n) -> A x q x q."""
        flat = w @ self.f  # A x T
        out = torch.empty((w.shape[0], self.q, self.q), dtype=w.dtype)
        out[:, self.iu[0], self.iu[1]] = flat
        out[:, self.iu[1], self.iu[0]] = flat
        return out

    def leverage(self, w: torch.Tensor, info_inv: torch.Tensor) -> torch.Tensor:
        """Diagonal of the hat matrix W^1/2 X (X'WX)^-1 X' W^1/2 per row of ``w`` (A x n)."""
        coef = info_inv[:, self.iu[0], self.iu[1]] * self.mult  # A x T
        return w * (coef @ self.f.T)


#: Linear-predictor offset of rows that do not take part in a phecode's fit: sigmoid gives
#: exactly 0 there, so they drop out of the likelihood, score and information without a mask
#: multiplication (one pass over memory fewer per iteration).
EXCLUDED_OFFSET = -1e30


class _Problem:
    """The outcome side of a batch of fits: offsets (A x n), the constant X'y (A x q) and, for
    Firth fits only (their log-likelihood needs it), y itself; plus a reusable n-wide buffer."""

    def __init__(self, design, y, offset, xty=None, buf=None, keep_y=True):
        self.y = y if keep_y else None
        self.offset = offset
        self.xty = y @ design.x if xty is None else xty  # constant over iterations
        self.buf = torch.empty_like(offset) if buf is None else buf

    def subset(self, design: _Design, idx: torch.Tensor) -> _Problem:
        """The rows ``idx`` (fits still iterating); the buffer is reused, X'y is not recomputed."""
        y = self.y[idx] if self.y is not None else None
        return _Problem(design, y, self.offset[idx], self.xty[idx], self.buf, keep_y=y is not None)


def _quantities(design: _Design, prob: _Problem, b: torch.Tensor, firth: bool, rows=None):
    """Log-likelihood (penalised, Firth only), score, information and its Cholesky factor.

    ``b`` is A x q for the rows ``rows`` of ``prob`` (all when None). Returns loglik (A,) or
    None, score (A, q), info (A, q, q), chol (A, q, q) and ok (A,) bool (information positive
    definite). Why so terse: at UK Biobank scale these A x n passes over memory, not the
    arithmetic, bound the run time, so the ordinary fit makes two elementwise passes (sigmoid and
    mu(1-mu), both in place in a reused buffer) and three GEMMs.
    """
    if rows is None:
        y, off, xty, eta = prob.y, prob.offset, prob.xty, prob.buf[: b.shape[0]]
    else:
        y = prob.y[rows] if prob.y is not None else None
        off, xty = prob.offset[rows], prob.xty[rows]
        eta = torch.empty_like(off)
    torch.addmm(off, b, design.xt, out=eta)
    loglik = None
    if firth:
        # y log(mu) + (1 - y) log(1 - mu) = y eta - log(1 + exp(eta)); 0 on excluded rows.
        loglik = (y * eta - torch.nn.functional.softplus(eta)).sum(1)
    mu = torch.sigmoid_(eta)
    score = xty - mu @ design.x  # X'(y - mu)
    if firth:
        mu_keep = mu.clone()
    w = mu.addcmul_(mu, mu, value=-1.0)  # mu (1 - mu), in place
    info = design.info(w)
    chol, err = torch.linalg.cholesky_ex(info)
    ok = err == 0
    if firth:
        eye = torch.eye(design.q, dtype=b.dtype).expand_as(info)
        safe = torch.where(ok[:, None, None], chol, eye)
        h = design.leverage(w, torch.cholesky_inverse(safe))
        score = score + (h * (0.5 - mu_keep)) @ design.x
        loglik = loglik + torch.log(torch.diagonal(safe, dim1=1, dim2=2)).sum(1)  # 0.5 log|I|
        # Newton steps and Wald SEs use the augmented information X' diag((1 + h) w) X, as
        # firthmodels does, so that both agree to numerical precision.
        info = design.info(w * (1.0 + h))
        chol, err = torch.linalg.cholesky_ex(info)
        ok &= err == 0
    return loglik, score, info, chol, ok


def _solve(chol, ok, rhs):
    """Solve info @ x = rhs for each row (A x q) from the Cholesky factors; zeros where not ok."""
    eye = torch.eye(chol.shape[-1], dtype=chol.dtype).expand_as(chol)
    safe = torch.where(ok[:, None, None], chol, eye)
    out = torch.cholesky_solve(rhs.unsqueeze(-1), safe).squeeze(-1)
    return torch.where(ok[:, None], out, torch.zeros_like(out))


def _inverse_diag(chol, ok):
    """Diagonal of the inverse information from its Cholesky factors; NaN where not ok."""
    eye = torch.eye(chol.shape[-1], dtype=chol.dtype).expand_as(chol)
    inv = torch.cholesky_inverse(torch.where(ok[:, None, None], chol, eye))
    diag = torch.diagonal(inv, dim1=1, dim2=2).clone()
    diag[~ok] = float("nan")
    return diag


def _newton(design, prob, b0, firth, tol, max_iter, max_step=5.0, max_halving=25, first=None):
    """Batched Newton-Raphson over the rows of ``prob`` (A fits).

    Returns b (A x q), converged (A,), iterations (A,) and the variances (A x q): the diagonal of
    the inverse information at the last iterate (within ``tol`` of the final estimate, so the
    standard errors agree with a refit at the estimate to ~``tol`` relative).

    Ordinary ML follows statsmodels' Newton iterations (full steps, stop when the largest
    parameter change is below ``tol``). Firth fits add step-halving on the penalised
    log-likelihood and a maximum step, as logistf and firthmodels do. ``first``: the score,
    Cholesky factor and ok flags at ``b0`` when already known (ordinary fits only).
    """
    b = b0.clone()
    a = b.shape[0]
    converged = torch.zeros(a, dtype=torch.bool)
    n_iter = torch.zeros(a, dtype=torch.int32)
    var = torch.full_like(b, float("nan"))
    active = torch.arange(a)
    if first is None:
        loglik, score, _, chol, ok = _quantities(design, prob, b, firth)
    else:
        loglik, (score, chol, ok) = None, first
    for _ in range(max_iter):
        if active.numel() == 0:
            break
        step = _solve(chol, ok, score)
        if firth:
            biggest = step.abs().amax(1, keepdim=True).clamp(min=1e-300)
            step = step * torch.clamp(max_step / biggest, max=1.0)
        b_new = b[active] + step
        n_iter[active] += 1
        ll_new, sc_new, _, ch_new, ok_new = _quantities(design, prob, b_new, firth)
        if firth:
            # Halve the step of fits whose penalised log-likelihood went down.
            for _h in range(max_halving):
                worse = ((ll_new < loglik - 1e-10) | ~torch.isfinite(ll_new)) & ok
                if not worse.any():
                    break
                idx = worse.nonzero().squeeze(1)
                step[idx] = step[idx] / 2
                b_new[idx] = b[active[idx]] + step[idx]
                q = _quantities(design, prob, b_new[idx], firth, rows=idx)
                ll_new[idx], sc_new[idx], ch_new[idx], ok_new[idx] = q[0], q[1], q[3], q[4]
        b[active] = b_new
        small = step.abs().amax(1) < tol
        if firth:
            small &= sc_new.abs().amax(1) < max(tol * 1e2, 1e-8)
        done = small & ok & ok_new
        failed = ~ok | ~ok_new | ~torch.isfinite(b_new).all(1)
        converged[active[done]] = True
        var[active[done]] = _inverse_diag(ch_new[done], ok_new[done])
        keep = ~(done | failed)
        if not keep.all():
            active = active[keep]
            prob = prob.subset(design, keep.nonzero().squeeze(1))
        loglik = ll_new[keep] if ll_new is not None else None
        score, chol, ok = sc_new[keep], ch_new[keep], ok_new[keep]
    return b, converged, n_iter, var


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
    z = np.asarray(z, dtype=np.float64)
    c = np.asarray(covariates, dtype=np.float64)
    cases = np.asarray(cases, dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    n, k_idps = z.shape
    p_codes = cases.shape[1]
    if c.shape[0] != n or cases.shape != (n, p_codes) or valid.shape != cases.shape:
        raise ValueError(
            f"shape mismatch: z {z.shape}, covariates {c.shape}, cases {cases.shape}, "
            f"valid {valid.shape}"
        )
    if not np.isfinite(c).all():
        raise ValueError("covariates contain missing values: mark such rows invalid and fill them")
    shape = (k_idps, p_codes)
    res = BatchResult(
        beta=np.full(shape, np.nan),
        se=np.full(shape, np.nan),
        p=np.full(shape, np.nan),
        converged=np.zeros(shape, bool),
        method=np.zeros(shape, np.int8),
        n_cases=np.zeros(shape, np.int64),
        n_controls=np.zeros(shape, np.int64),
        n_iter=np.zeros(shape, np.int32),
    )
    ct = torch.from_numpy(c)
    null_design = _Design(ct)
    z_valid = np.isfinite(z)
    designs = [
        _Design(
            torch.cat([torch.from_numpy(np.where(z_valid[:, k], z[:, k], 0.0))[:, None], ct], 1)
        )
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
        m_all = torch.from_numpy(valid_t[sl].astype(np.float64))
        y_all = torch.from_numpy(cases_t[sl].astype(np.float64)) * m_all
        off_all = torch.from_numpy(np.where(valid_t[sl], 0.0, EXCLUDED_OFFSET))
        # Start values: the covariate-only (null) model of each phecode, IDP coefficient 0.
        ybar = (y_all.sum(1) / m_all.sum(1).clamp(min=1)).clamp(1e-6, 1 - 1e-6)
        g0 = torch.zeros((y_all.shape[0], c.shape[1]), dtype=torch.float64)
        g0[:, 0] = torch.logit(ybar)
        null_prob = _Problem(null_design, y_all, off_all)
        g_null, ok_null, _, _ = _newton(null_design, null_prob, g0, False, 1e-6, 25)
        g_null = torch.where(ok_null[:, None] & torch.isfinite(g_null), g_null, g0)
        b0 = torch.cat([torch.zeros((g_null.shape[0], 1), dtype=torch.float64), g_null], 1)
        score0, info0 = shared.compute(y_all, off_all, g_null)
        chol0, err0 = torch.linalg.cholesky_ex(info0)
        xty_all = shared.cross(y_all)  # K x A x q: X_k'y for every IDP, one GEMM
        n_valid = m_all @ v_mat  # A x K: valid rows of each pair
        n_case = y_all @ v_mat
        buf = torch.empty_like(off_all)
        for k in range(k_idps):
            design = designs[k]
            if z_valid[:, k].all():
                y, off = y_all, off_all
            else:
                y = y_all * v_rows[k]
                off = torch.where(v_rows[k] > 0, off_all, EXCLUDED_OFFSET)
            n_cases = n_case[:, k]
            n_controls = n_valid[:, k] - n_cases
            fittable = (n_cases > 0) & (n_controls > 0)
            want_firth = torch.zeros_like(fittable)
            a = y.shape[0]
            b = torch.full_like(b0, float("nan"))
            var = torch.full_like(b0, float("nan"))
            conv = torch.zeros(a, dtype=torch.bool)
            method = torch.zeros(a, dtype=torch.int8)
            iters = torch.zeros(a, dtype=torch.int32)
            ml = fittable.nonzero().squeeze(1)
            if ml.numel():
                if ml.numel() == y.shape[0]:
                    prob = _Problem(design, None, off, xty_all[k], buf, keep_y=False)
                else:
                    prob = _Problem(design, None, off[ml], xty_all[k, ml], buf, keep_y=False)
                first = (score0[k, ml], chol0[k, ml], err0[k, ml] == 0)
                b_ml, c_ml, it_ml, v_ml = _newton(
                    design, prob, b0[ml], False, tol, max_iter, first=first
                )
                b[ml], conv[ml], iters[ml], var[ml] = b_ml, c_ml, it_ml, v_ml
                method[ml] = METHOD_ML
                unreliable = ~c_ml | ~(b_ml[:, 0].abs() <= separation_beta)
                if firth_cases > 0:
                    wald = (b_ml[:, 0] / torch.sqrt(v_ml[:, 0])).abs().numpy()
                    p_ml = torch.from_numpy(2 * sps.norm.sf(wald))
                    unreliable |= (n_cases[ml] < firth_cases) & ~(p_ml >= firth_p)
                want_firth[ml[unreliable]] = True
            fi = want_firth.nonzero().squeeze(1)
            if fi.numel():
                prob = _Problem(design, y[fi], off[fi])
                b_f, c_f, it_f, v_f = _newton(design, prob, b0[fi], True, tol, 4 * max_iter)
                b[fi], conv[fi], iters[fi], var[fi] = b_f, c_f, it_f, v_f
                method[fi] = METHOD_FIRTH
            res.n_cases[k, sl] = n_cases.numpy().astype(np.int64)
            res.n_controls[k, sl] = n_controls.numpy().astype(np.int64)
            res.beta[k, sl] = b[:, 0].numpy()
            res.se[k, sl] = torch.sqrt(var[:, 0]).numpy()
            res.converged[k, sl] = conv.numpy()
            res.method[k, sl] = method.numpy()
            res.n_iter[k, sl] = iters.numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        res.p = 2 * sps.norm.sf(np.abs(res.beta / res.se))
    return res
