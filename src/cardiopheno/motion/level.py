"""One level of the coarse-to-fine registration: its fixed tensors and its loss.

The loss of a control grid (see :mod:`cardiopheno.motion.register` for the model) is the mean
squared difference of the warped frames from ED per channel, plus the membrane and bending
energies (exact quadratic forms on the control grid), the incompressibility of the ED wall, the
sliding penalty (:class:`~cardiopheno.motion.sliding.SlidingTerm`) and the temporal smoothness.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cardiopheno.motion.bspline import average_pool, bspline_matrix
from cardiopheno.motion.sliding import SlidingTerm


class RegistrationLevel:
    """One level's fixed tensors: the pooled channels, the B-spline matrices on the pooled grid
    and their differences (derivatives of the field between neighbouring pooled pixels), the
    pooled ED wall, and the base sampling grid. ``polar``: the sliding term's frame
    (:func:`~cardiopheno.motion.sliding.polar_frame`), None without that term."""

    def __init__(self, ch, ed_frame, wall, grid_px, factor, h, w, polar=None):
        n_s, n_t = ch.shape[:2]
        pooled = average_pool(ch.reshape(n_s * n_t, -1, h, w), factor)
        hf, wf = pooled.shape[-2:]
        self.moving = pooled
        fixed = pooled.view(n_s, n_t, -1, hf, wf)[:, ed_frame : ed_frame + 1]
        self.fixed = fixed.expand(-1, n_t, -1, -1, -1).reshape(n_s * n_t, -1, hf, wf)
        self.factor = factor
        self.mx = bspline_matrix(h, grid_px, factor)
        self.my = bspline_matrix(w, grid_px, factor)
        # field differences between neighbouring pooled pixels, per full-resolution pixel
        self.dmx = (self.mx[1:] - self.mx[:-1]) / factor
        self.dmy = (self.my[1:] - self.my[:-1]) / factor
        self._smoothness_forms(hf, wf)
        self._wall_box(wall, n_t)
        self._sampling_grid(hf, wf)
        self.sliding_term = None
        if polar is not None:
            self.sliding_term = SlidingTerm(wall, grid_px, factor, h, w, *polar, n_t)

    def _smoothness_forms(self, hf: int, wf: int) -> None:
        """The membrane and bending energies as quadratic forms on the control grid."""
        factor = self.factor
        # membrane energy as a quadratic form on the control grid: sum |D M p M'^T|^2 =
        # <(D M)^T (D M) p, p M'^T M'>, exact and ~10x less work than differencing the field
        self.kx = (self.dmx.T @ self.dmx, self.my.T @ self.my, (hf - 1) * wf)
        self.ky = (self.mx.T @ self.mx, self.dmy.T @ self.dmy, hf * (wf - 1))
        # bending energy, the same way: second differences per full-resolution pixel^2
        d2x = (self.dmx[1:] - self.dmx[:-1]) / factor
        d2y = (self.dmy[1:] - self.dmy[:-1]) / factor
        self.bend = (
            (d2x.T @ d2x, self.my.T @ self.my, 1.0, (hf - 2) * wf),
            (self.dmx.T @ self.dmx, self.dmy.T @ self.dmy, 2.0, (hf - 1) * (wf - 1)),
            (self.mx.T @ self.mx, d2y.T @ d2y, 1.0, hf * (wf - 2)),
        )

    def _wall_box(self, wall: torch.Tensor, n_t: int) -> None:
        """The pooled ED wall on its bounding box (over slices), where the Jacobian is needed,
        and the field's derivatives there."""
        wall_f = average_pool(wall[:, None], self.factor)[:, 0, :-1, :-1]  # wall per pixel
        rows = torch.nonzero(wall_f.sum(dim=(0, 2)) > 0)[:, 0]
        cols = torch.nonzero(wall_f.sum(dim=(0, 1)) > 0)[:, 0]
        if rows.numel() == 0:
            rows = cols = torch.zeros(1, dtype=torch.long)
        r, c = slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)
        self.wall = wall_f[:, r, c].repeat_interleave(n_t, dim=0)  # pairs are slice-major
        self.wall_n = self.wall.sum().clamp_min(1.0)
        self.wall_per_pair = self.wall.sum(dim=(1, 2), keepdim=True).clamp_min(1.0)
        self.jx, self.jy = self.dmx[r], self.dmy[c]  # derivatives on the box
        self.mx_in, self.my_in = self.mx[:-1][r], self.my[:-1][c]

    def _sampling_grid(self, hf: int, wf: int) -> None:
        """grid_sample's normalised coordinates ((x, y) = (width, height), align_corners):
        pooled pixel k + u / factor."""
        factor = self.factor
        gi = torch.arange(hf, dtype=torch.float32) * (2.0 / max(hf - 1, 1)) - 1.0
        gj = torch.arange(wf, dtype=torch.float32) * (2.0 / max(wf - 1, 1)) - 1.0
        self.base = torch.stack(torch.meshgrid(gj, gi, indexing="xy"), dim=-1)  # (hf, wf, 2)
        self.to_grid = torch.tensor(
            [2.0 / (factor * max(wf - 1, 1)), 2.0 / (factor * max(hf - 1, 1))]
        )

    def sliding(self, pm) -> torch.Tensor:
        """The sliding energy of control grid ``pm`` (:meth:`SlidingTerm.energy`)."""
        return self.sliding_term.energy(pm)

    def loss(self, p, q, not_ed, wt, cfg) -> tuple[torch.Tensor, torch.Tensor]:
        """(total loss, per-pair data term) of control grid ``p`` (B, 2, gh, gw; pixels along
        the image's first and second axes); ``q`` the same viewed (S, T, 2, gh, gw)."""
        pm = p * not_ed
        # the field with its channels swapped to grid_sample's (width, height) order
        uv = torch.matmul(torch.matmul(self.mx, pm.flip(1)), self.my.T)
        grid = torch.addcmul(self.base, uv.permute(0, 2, 3, 1), self.to_grid)
        warped = F.grid_sample(
            self.moving, grid, mode="bilinear", padding_mode="border", align_corners=True
        )
        per_channel = ((warped - self.fixed) ** 2).mean(dim=(2, 3))  # (B, C)
        per_pair = (per_channel * wt).mean(dim=1)
        loss = per_pair.mean()
        if cfg.smoothness > 0:
            membrane = sum(
                ((a @ pm) * (pm @ b)).sum() / (n * pm.shape[0] * 2)
                for a, b, n in (self.kx, self.ky)
            )
            loss = loss + cfg.smoothness * membrane
        if cfg.bending > 0:
            bending = sum(
                c * ((a @ pm) * (pm @ b)).sum() / (max(n, 1) * pm.shape[0] * 2)
                for a, b, c, n in self.bend
            )
            loss = loss + cfg.bending * bending
        if cfg.incompressibility > 0:
            loss = loss + self._incompressibility(pm, cfg.incompressibility)
        if cfg.sliding > 0:
            loss = loss + cfg.sliding * self.sliding(pm)
        if cfg.temporal > 0:
            d2 = torch.roll(q, -1, 1) - 2 * q + torch.roll(q, 1, 1)
            loss = loss + cfg.temporal * (d2**2).mean()
        return loss, per_pair

    def _incompressibility(self, pm, weight: float) -> torch.Tensor:
        """Myocardium is nearly incompressible: ``weight`` x the mean over the ED wall of
        log(det J)^2 about each pair's mean, so the wall cannot shorten along itself without thickening (the
        tangential sliding that edges and faint texture leave free)."""
        di = torch.matmul(torch.matmul(self.jx, pm), self.my_in.T)  # d u / d i
        dj = torch.matmul(torch.matmul(self.mx_in, pm), self.jy.T)  # d u / d j
        det = (1 + di[:, 0]) * (1 + dj[:, 1]) - di[:, 1] * dj[:, 0]
        logdet = torch.log(det.clamp_min(0.05))
        # about each pair's mean over the wall: the wall's area may change as a whole
        # (through-plane motion), not locally
        mean = (logdet * self.wall).sum(dim=(1, 2), keepdim=True) / self.wall_per_pair
        dev = (logdet - mean) ** 2
        return weight * (dev * self.wall).sum() / self.wall_n
