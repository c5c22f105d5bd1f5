"""Batched Newton-Raphson for many logistic regressions at once: ordinary and Firth fits.

The engine of :func:`cardiopheno.stats.logistic.fit_pairs`. A :class:`Design` holds X and the
products of its columns, so that the information matrices of A fits sharing X are one GEMM
(``X' diag(w_a) X`` for every row a of the A x n weights); a :class:`Problem` holds the outcome
side of those fits (offsets, X'y, and y for Firth fits); :func:`newton` iterates them together,
dropping fits as they converge. Firth's penalised likelihood (Firth 1993; Heinze & Schemper 2002)
uses the step-halving and maximum step of logistf/firthmodels.
"""

from __future__ import annotations

import torch


class Design:
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


class Problem:
    """The outcome side of a batch of fits: offsets (A x n), the constant X'y (A x q) and, for
    Firth fits only (their log-likelihood needs it), y itself; plus a reusable n-wide buffer."""

    def __init__(self, design, y, offset, xty=None, buf=None, keep_y=True):
        self.y = y if keep_y else None
        self.offset = offset
        self.xty = y @ design.x if xty is None else xty  # constant over iterations
        self.buf = torch.empty_like(offset) if buf is None else buf

    def subset(self, design: Design, idx: torch.Tensor) -> Problem:
        """The rows ``idx`` (fits still iterating); the buffer is reused, X'y is not recomputed."""
        y = self.y[idx] if self.y is not None else None
        return Problem(design, y, self.offset[idx], self.xty[idx], self.buf, keep_y=y is not None)


def _quantities(design: Design, prob: Problem, b: torch.Tensor, firth: bool, rows=None):
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


def newton(design, prob, b0, firth, tol, max_iter, max_step=5.0, max_halving=25, first=None):
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
