"""The registration's sliding penalty: points must not slide along the LV wall.

The term is the mean over the ED wall of (d u_theta / d s)^2, the arc derivative of the
displacement's component along the wall (polar about the ED cavity centre), less the LV's
translation. It is zero for a rotation, a translation and any radial field however uneven round
the ring; the membrane energy is not: it is lowered by sliding points into a hypokinetic sector
(issue 14). :func:`polar_frame` derives the frame (centre, translation) from the segmentation;
:class:`SlidingTerm` holds one level's fixed tensors and evaluates the energy.
"""

from __future__ import annotations

import numpy as np
import torch

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM
from cardiopheno.motion.bspline import average_pool, bspline_matrix

# the sliding term is evaluated on pixels pooled by at least this: it regularises the field's
# smooth part (sliding spreads over sectors), and at full resolution its matrix products on
# the 2-pixel control grid cost more than the rest of a step
SLIDING_SAMPLE = 4


def _centroids(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 2) centroids of (..., H, W) masks in pixels, and whether each mask is non-empty."""
    n = masks.sum(axis=(-2, -1)).astype(np.float64)
    ii, jj = np.arange(masks.shape[-2]), np.arange(masks.shape[-1])
    ci = (masks.sum(axis=-1) * ii).sum(axis=-1) / np.maximum(n, 1)
    cj = (masks.sum(axis=-2) * jj).sum(axis=-1) / np.maximum(n, 1)
    return np.stack([ci, cj], axis=-1), n > 0


def polar_frame(
    lab: np.ndarray, ed_frame: int, translation: str
) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """The sliding term's frame: per slice the ED cavity centroid (S, 2); per pair the LV's
    translation from ED (B, 2) where it is known, and whether it is (B,); elsewhere the term
    fits it (least squares).

    ``translation``: "labels", from the segmentation (frames that have it): the cavity's and the
    epicardium's centroids shift by T + a and T + rho a, where a is the first harmonic of the
    endocardial radius's change round the ring (a hypokinetic region shifts the cavity's
    centroid without any translation) and rho = r_endo / r_epi, because an incompressible wall
    keeps r_epi^2 - r_endo^2 at each angle (up to a constant): T = (s_epi - rho s_cav) / (1 - rho);
    "free", fitted on every pair (then a hypokinetic region's first harmonic reads as a
    translation and is not held); "none", zero (a translating heart then counts as sliding)."""
    n_s, n_t = lab.shape[:2]
    cav, has_cav = _centroids(lab == LV_CAVITY)  # (S, T, 2)
    epi, has_epi = _centroids(np.isin(lab, (LV_CAVITY, LV_MYOCARDIUM)))
    centre = np.where(has_cav[:, ed_frame, None], cav[:, ed_frame], epi[:, ed_frame])
    shift = np.zeros((n_s, n_t, 2), np.float32)
    known = np.zeros((n_s, n_t), np.float32)
    if translation == "none":
        known[:] = 1.0
    elif translation == "labels":
        ed = lab[:, ed_frame]
        n_cav = (ed == LV_CAVITY).sum(axis=(1, 2))
        n_epi = np.isin(ed, (LV_CAVITY, LV_MYOCARDIUM)).sum(axis=(1, 2))
        rho = np.minimum(np.sqrt(n_cav / np.maximum(n_epi, 1)), 0.95)[:, None, None]
        s_cav, s_epi = cav - cav[:, ed_frame, None], epi - epi[:, ed_frame, None]
        ok = has_cav & has_epi & has_cav[:, ed_frame, None]
        shift[ok] = ((s_epi - rho * s_cav) / (1 - rho))[ok]
        known[ok] = 1.0
    elif translation != "free":
        raise ValueError(f"sliding_translation must be labels, free or none, not {translation!r}")
    return (
        centre.astype(np.float32),
        torch.from_numpy(shift.reshape(n_s * n_t, 2)),
        torch.from_numpy(known.reshape(n_s * n_t)),
    )


class SlidingTerm:
    """One level's fixed tensors for the sliding energy, on the wall's bounding box pooled by at
    least SLIDING_SAMPLE: the field and its exact derivatives there (B-spline derivative
    matrices, not differences, so that the polar terms meet at the same points) and each
    pixel's polar frame about ``centre`` (S, 2; full-resolution crop pixels); ``shift`` and
    ``known`` as :func:`polar_frame` returns them."""

    def __init__(self, wall, grid_px, factor, h, w, centre, shift, known, n_t):
        factor = max(factor, SLIDING_SAMPLE)
        wall_p = average_pool(wall[:, None], factor)[:, 0]
        rows = torch.nonzero(wall_p.sum(dim=(0, 2)) > 0)[:, 0]
        cols = torch.nonzero(wall_p.sum(dim=(0, 1)) > 0)[:, 0]
        if rows.numel() == 0:
            rows = cols = torch.zeros(1, dtype=torch.long)
        r, c = slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)
        self.sx = bspline_matrix(h, grid_px, factor)[r]
        self.sy = bspline_matrix(w, grid_px, factor)[c]
        self.sdx = bspline_matrix(h, grid_px, factor, derivative=True)[r]
        self.sdy = bspline_matrix(w, grid_px, factor, derivative=True)[c]

        def pos(n, k):  # full-resolution positions of pooled pixels (as bspline_matrix)
            return np.clip(factor * np.arange(k) + (factor - 1) / 2.0, 0.0, n - 1)

        px = torch.from_numpy(pos(h, wall_p.shape[1])[r].astype(np.float32))
        py = torch.from_numpy(pos(w, wall_p.shape[2])[c].astype(np.float32))
        cen = torch.as_tensor(centre, dtype=torch.float32)
        x = px[None, :, None] - cen[:, 0, None, None]
        y = py[None, None, :] - cen[:, 1, None, None]
        rad = torch.hypot(x, y).clamp_min(1.0)
        ex, ey = x / rad, y / rad  # radial unit vector; the tangent is (-ey, ex)
        wt = wall_p[:, r, c]
        fx, fy = ex / rad, ey / rad  # d(c . e_theta)/ds = -c . (fx, fy): a translation c
        a = torch.stack(
            [
                torch.stack([(wt * fx * fx).sum((1, 2)), (wt * fx * fy).sum((1, 2))], -1),
                torch.stack([(wt * fx * fy).sum((1, 2)), (wt * fy * fy).sum((1, 2))], -1),
            ],
            -2,
        )
        a_inv = torch.linalg.inv(a + 1e-6 * torch.eye(2))

        def pairs(t):  # per slice -> per pair (slice-major)
            return t.repeat_interleave(n_t, dim=0)

        self.polar = [pairs(t) for t in (ey * ey, -ex * ey, ex * ex, fx, fy, wt, a_inv)]
        self.shift, self.known = shift, known
        self.polar_n = pairs(wt).sum().clamp_min(1.0)

    def energy(self, pm) -> torch.Tensor:
        """Mean over the wall of (d u_theta / d s)^2 of the field less the LV's translation:
        the arc derivative of the tangential displacement is e_t . (d u / d s) - u_r / r, zero
        for a field that moves points along their radii however unevenly round the ring."""
        txx, txy, tyy, fx, fy, wt, a_inv = self.polar
        rows = torch.matmul(self.sx, pm)
        u, dj = torch.matmul(rows, self.sy.T), torch.matmul(rows, self.sdy.T)
        di = torch.matmul(torch.matmul(self.sdx, pm), self.sy.T)
        g = txx * di[:, 0] + txy * (dj[:, 0] + di[:, 1]) + tyy * dj[:, 1]
        g = g - (fx * u[:, 0] + fy * u[:, 1])
        # less the known translation (g of a translation c is -c . f), ...
        g = g + self.shift[:, 0, None, None] * fx + self.shift[:, 1, None, None] * fy
        wg = wt * g
        b = torch.stack([(wg * fx).sum((1, 2)), (wg * fy).sum((1, 2))], -1)  # (B, 2)
        # ... or, where it is not known, the best one: min_c sum w (g - c . f)^2
        best = torch.einsum("bi,bij,bj->b", b, a_inv, b) * (1 - self.known)
        return ((wg * g).sum((1, 2)) - best).sum() / self.polar_n
