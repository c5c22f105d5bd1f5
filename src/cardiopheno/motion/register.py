"""Batched in-plane registration of short-axis slices: every frame to ED, all at once, in torch.

Why hand-written (on torch's ``grid_sample``/``interpolate`` and its autograd and Adam) rather
than one library call per frame pair: a UK Biobank cine is ~10 slices x 50 frames, i.e. hundreds
of small 2D pairs; solving them as one batch of displacement fields is a few hundred tensor
operations per subject instead of hundreds of separate registrations (measured against
SimpleITK's B-spline registration in BENCHMARKS.md), and the same code runs on a GPU.

Model, per slice s and frame t: a displacement u_st on the ED pixel grid of the crop (pixels,
channels (x, y) = the image's first two axes) such that I_t(x + u_st(x)) ~ I_ED(x): an ED point x
lies at x + u_st(x) in frame t (this is ukbb_cardiac's ED -> frame t transformation, estimated
directly instead of composing frame-to-frame fields, so no drift accumulates). u is a control
grid upsampled bicubically to the pixels (a B-spline-like free-form deformation), optimised
coarse-to-fine (control spacing ``grid_px``, images smoothed by ``smooth_px`` and average-pooled
by ``downsample`` at each level; the control grid stays in full-resolution pixels) on

    mean squared intensity difference (images scaled to their ED 99th percentile)
  + label_weight x the same on smoothed LV cavity and myocardium masks (frames that have labels)
  + smoothness x membrane energy |grad u|^2 (+ bending x bending energy, off by default)
  + incompressibility x (log det of the Jacobian - its mean) ^ 2 over the ED wall
  + sliding x (d u_theta / d s)^2 over the ED wall: the arc derivative of the displacement's
    component along the wall (polar about the ED cavity centre), less the LV's translation
  + temporal x |u_s,t+1 - 2 u_st + u_s,t-1|^2 (cyclic).

The images are cropped to the LV's bounding box over all frames plus ``margin_mm`` (as
ukbb_cardiac crops before registering), which keeps the RV and outflow tract from steering it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM

log = logging.getLogger(__name__)


STOP_WINDOW = 10  # steps between the early-stopping checks
# the sliding term is evaluated on pixels pooled by at least this: it regularises the field's
# smooth part (sliding spreads over sectors), and at full resolution its matrix products on
# the 2-pixel control grid cost more than the rest of a step
SLIDING_SAMPLE = 4


class TrackingError(ValueError):
    """Motion cannot be tracked on this input (the message says why)."""


@dataclass(frozen=True)
class MotionSettings:
    """Registration settings (config ``phenotypes.strain``)."""

    grid_px: tuple[int, ...] = (8, 4, 2)  # control-point spacing per level, pixels
    smooth_px: tuple[float, ...] = (2.0, 1.0, 0.5)  # image smoothing per level, pixels
    iterations: tuple[int, ...] = (50, 40, 20)
    learning_rate: float = 0.3  # Adam step, pixels (at the first level)
    # scale the step with the control spacing at finer levels (grid_px / grid_px[0]): Adam's
    # first steps move every control point by about the step whatever its gradient, which at a
    # 2-pixel spacing is a 15 % local strain that the level then spends its steps undoing
    step_follows_grid: bool = True
    smoothness: float = 0.02  # membrane energy |grad u|^2
    # bending energy |u_ii|^2 + 2 |u_ij|^2 + |u_jj|^2 (as MIRTK's FFD in ukbb_cardiac), tried in
    # place of the membrane, which favours equal circumferential stretch all round; off: on the
    # dev subjects (bending 1, no membrane) Err's global error grew to 12 points
    bending: float = 0.0
    temporal: float = 0.01
    label_weight: float = 1.0
    texture_weight: float = 0.0
    incompressibility: float = 1.0
    # 0: the penalty covers the whole ED wall, its edges included (1 was the default before:
    # with the edges free, the endocardial points slid along the wall, issue 14's analysis)
    wall_erosion: int = 0
    # penalty on points sliding along the wall: (d u_theta / d s)^2 over the ED wall, the arc
    # derivative of the displacement's tangential component about the ED cavity centre, after
    # removing the LV's translation. Zero for a rotation, a translation and any radial field
    # however uneven round the ring; the membrane energy is not: it is lowered by sliding
    # points into a hypokinetic sector (a weak sector's radial motion then reads as a
    # translation), which read those segments as near normal (issue 14)
    sliding: float = 0.3
    # the translation removed: "labels" (from the segmentation's centroids, corrected for a
    # hypokinetic region's shift of them; see _polar_frame), "free" (fitted, which leaves the
    # sliding above unpenalised) or "none"
    sliding_translation: str = "labels"
    margin_mm: float = 15.0
    # per level, the images are average-pooled by this factor (1 = full resolution); the
    # control grid stays in full-resolution pixels, so levels hand it on unchanged
    downsample: tuple[int, ...] = (4, 2, 1)
    # a level ends early when its loss fell by less than this fraction over STOP_WINDOW steps
    stop_tolerance: float = 0.0
    # torch threads for the optimisation: 1 by default, because on a shared or busy machine
    # torch's intra-op threads spin against other work (measured 30x slower per iteration with
    # 2 threads on 2 loaded cores); parallelism comes from running batches side by side
    threads: int = 1


@dataclass
class SliceMotion:
    """Displacements of ``slices`` (image indices) from the ED frame to every frame."""

    slices: list[int]
    ed_frame: int
    origin: tuple[int, int]  # crop origin in image pixels (x, y)
    displacement: np.ndarray  # (S, T, 2, H, W) float32 pixels on the ED grid of the crop
    residual: np.ndarray  # (S, T) final mean squared intensity difference per pair
    seconds: float
    steps: tuple[int, ...] = ()  # optimisation steps taken per level (early stopping)


def _crop_box(labels: np.ndarray, slices: list[int], margin: int) -> tuple[slice, slice]:
    lv = np.isin(labels[:, :, slices], (LV_CAVITY, LV_MYOCARDIUM)).any(axis=(2, 3))
    nz = np.nonzero(lv)
    if nz[0].size == 0:
        raise TrackingError("no LV cavity or myocardium on the slices to track")
    x0, x1 = max(int(nz[0].min()) - margin, 0), min(int(nz[0].max()) + margin + 1, lv.shape[0])
    y0, y1 = max(int(nz[1].min()) - margin, 0), min(int(nz[1].max()) + margin + 1, lv.shape[1])
    return slice(x0, x1), slice(y0, y1)


def _channels(
    img: np.ndarray, lab: np.ndarray | None, ed: int, sigma: float, texture: float
) -> np.ndarray:
    """(S, T, C, H, W): scaled image, its high-pass detail x ``texture`` (so that myocardial
    texture, ~5 % of the blood signal, weighs against the edges and can hold points from sliding
    along the wall), then LV cavity and myocardium masks when labels are given."""
    ref = np.percentile(img[:, ed], 99.0, axis=(1, 2))  # per slice, ED
    scaled = np.clip(img / np.maximum(ref, 1e-6)[:, None, None, None], 0.0, 1.5)
    chans = [scaled]
    if texture > 0:
        detail = scaled - ndimage.gaussian_filter(scaled, sigma=(0, 0, 2.0, 2.0))
        chans.append(texture * detail)
    if lab is not None:
        chans += [(lab == LV_CAVITY).astype(np.float32), (lab == LV_MYOCARDIUM).astype(np.float32)]
    out = np.stack(chans, axis=2).astype(np.float32)
    if sigma > 0:
        out = ndimage.gaussian_filter(out, sigma=(0, 0, 0, sigma, sigma))
    return out


def bspline_matrix(
    n_pixels: int, spacing: int, factor: int = 1, derivative: bool = False
) -> torch.Tensor:
    """(n_rows, n_control) cubic B-spline weights: control points every ``spacing`` pixels
    from one spacing before pixel 0 to one after the last. The dense field is then
    M_x p M_y^T, two small matrix products whose backward is cheap (torch's bicubic
    ``interpolate`` backward is ~10x slower on CPU).

    With ``factor`` > 1 the rows are the pixels of the image average-pooled by ``factor``
    (ceil(n_pixels / factor) of them, each at its block's centre in full-resolution pixels,
    clamped to the image): the same control grid, evaluated on a coarser pixel grid, so a level
    can run on pooled images and hand its control points on unchanged.

    With ``derivative`` the rows are the weights' derivatives per full-resolution pixel (the
    field's exact derivative at the same points)."""
    n_ctrl = int(math.ceil((n_pixels - 1) / spacing)) + 3
    n_rows = int(math.ceil(n_pixels / factor))
    pos = np.clip(factor * np.arange(n_rows) + (factor - 1) / 2.0, 0.0, n_pixels - 1)
    x = pos / spacing + 1.0  # pixel positions in control units
    i = np.floor(x).astype(int)
    f = x - i
    if derivative:
        w = np.stack(
            [-((1 - f) ** 2) / 2, (3 * f**2 - 4 * f) / 2, (-3 * f**2 + 2 * f + 1) / 2, f**2 / 2]
        ) / spacing  # fmt: skip
    else:
        w = np.stack(
            [
                (1 - f) ** 3 / 6,
                (3 * f**3 - 6 * f**2 + 4) / 6,
                (-3 * f**3 + 3 * f**2 + 3 * f + 1) / 6,
                f**3 / 6,
            ]  # fmt: skip
        )
    m = np.zeros((n_rows, n_ctrl + 1))
    for k in range(4):
        np.add.at(m, (np.arange(n_rows), i - 1 + k), w[k])
    return torch.from_numpy(m[:, :n_ctrl].astype(np.float32))


def _dense(p: torch.Tensor, mx: torch.Tensor, my: torch.Tensor) -> torch.Tensor:
    """Control grid (B, 2, cx, cy) -> displacement (B, 2, H, W)."""
    return torch.matmul(torch.matmul(mx, p), my.T)


def _pool(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, C, H, W) average-pooled by ``factor`` (edges replicated up to a multiple of it)."""
    if factor == 1:
        return x
    h, w = x.shape[-2:]
    ph, pw = (-h) % factor, (-w) % factor
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return F.avg_pool2d(x, factor)


def track_slices(
    image: np.ndarray,
    labels: np.ndarray | None,
    slices: list[int],
    ed_frame: int,
    spacing: tuple[float, float] = (1.0, 1.0),
    settings: MotionSettings | None = None,
) -> SliceMotion:
    """Displacement fields from frame ``ed_frame`` to every frame on ``slices`` of a 4D cine.

    ``image``: X x Y x Z x T; ``labels`` on the same grid (used for the crop and, with
    ``label_weight`` > 0, as extra channels on the frames where they exist).
    """
    cfg = settings or MotionSettings()
    t0 = time.perf_counter()
    if image.ndim != 4:
        raise TrackingError(f"expected a 4D cine, got shape {image.shape}")
    n_t = image.shape[3]
    if n_t < 2:
        raise TrackingError(f"a cine of {n_t} frame cannot show motion")
    if not slices:
        raise TrackingError("no slices to track")
    if labels is None:
        raise TrackingError("tracking needs the segmentation (for the LV crop)")
    margin = int(math.ceil(cfg.margin_mm / min(spacing)))
    bx, by = _crop_box(labels, slices, margin)
    img = np.moveaxis(image[bx, by][:, :, slices].astype(np.float32), (0, 1), (2, 3))
    lab = np.moveaxis(labels[bx, by][:, :, slices], (0, 1), (2, 3))  # (S, T, H, W)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(max(1, cfg.threads))
    try:
        return _optimise(img, lab, slices, ed_frame, cfg, (bx.start, by.start), t0)
    finally:
        torch.set_num_threads(threads_before)


class _Level:
    """One level's fixed tensors: the pooled channels, the B-spline matrices on the pooled grid
    and their differences (derivatives of the field between neighbouring pooled pixels), the
    pooled ED wall, and the base sampling grid."""

    def __init__(self, ch, ed_frame, wall, grid_px, factor, h, w, polar=None):
        n_s, n_t = ch.shape[:2]
        pooled = _pool(ch.reshape(n_s * n_t, -1, h, w), factor)
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
        wall_f = _pool(wall[:, None], factor)[:, 0, :-1, :-1]  # fraction of wall per pixel
        # the Jacobian is needed on the wall only: its bounding box (over slices) is enough
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
        # grid_sample's normalised coordinates ((x, y) = (width, height), align_corners):
        # pooled pixel k + u / factor
        gi = torch.arange(hf, dtype=torch.float32) * (2.0 / max(hf - 1, 1)) - 1.0
        gj = torch.arange(wf, dtype=torch.float32) * (2.0 / max(wf - 1, 1)) - 1.0
        self.base = torch.stack(torch.meshgrid(gj, gi, indexing="xy"), dim=-1)  # (hf, wf, 2)
        self.to_grid = torch.tensor(
            [2.0 / (factor * max(wf - 1, 1)), 2.0 / (factor * max(hf - 1, 1))]
        )
        if polar is not None:
            self._polar(wall, grid_px, factor, h, w, *polar, n_t)

    def _polar(self, wall, grid_px, factor, h, w, centre, shift, known, n_t):
        """The sliding term's fixed tensors on the wall's bounding box, pooled by at least
        SLIDING_SAMPLE: the field and its exact derivatives there (B-spline derivative
        matrices, not differences, so that the polar terms meet at the same points) and each
        pixel's polar frame about ``centre`` (S, 2; full-resolution crop pixels)."""
        factor = max(factor, SLIDING_SAMPLE)
        wall_p = _pool(wall[:, None], factor)[:, 0]
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

    def sliding(self, pm) -> torch.Tensor:
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
            # myocardium is nearly incompressible: penalise log(det J)^2 over the ED wall,
            # so the wall cannot shorten along itself without thickening (the tangential
            # sliding that edges and faint texture leave free)
            di = torch.matmul(torch.matmul(self.jx, pm), self.my_in.T)  # d u / d i
            dj = torch.matmul(torch.matmul(self.mx_in, pm), self.jy.T)  # d u / d j
            det = (1 + di[:, 0]) * (1 + dj[:, 1]) - di[:, 1] * dj[:, 0]
            logdet = torch.log(det.clamp_min(0.05))
            # about each pair's mean over the wall: the wall's area may change as a whole
            # (through-plane motion), not locally
            mean = (logdet * self.wall).sum(dim=(1, 2), keepdim=True) / self.wall_per_pair
            dev = (logdet - mean) ** 2
            loss = loss + cfg.incompressibility * (dev * self.wall).sum() / self.wall_n
        if cfg.sliding > 0:
            loss = loss + cfg.sliding * self.sliding(pm)
        if cfg.temporal > 0:
            d2 = torch.roll(q, -1, 1) - 2 * q + torch.roll(q, 1, 1)
            loss = loss + cfg.temporal * (d2**2).mean()
        return loss, per_pair


def _centroids(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 2) centroids of (..., H, W) masks in pixels, and whether each mask is non-empty."""
    n = masks.sum(axis=(-2, -1)).astype(np.float64)
    ii, jj = np.arange(masks.shape[-2]), np.arange(masks.shape[-1])
    ci = (masks.sum(axis=-1) * ii).sum(axis=-1) / np.maximum(n, 1)
    cj = (masks.sum(axis=-2) * jj).sum(axis=-1) / np.maximum(n, 1)
    return np.stack([ci, cj], axis=-1), n > 0


def _polar_frame(lab, ed_frame, translation):
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


def _optimise(img, lab, slices, ed_frame, cfg, origin, t0) -> SliceMotion:
    n_s, n_t, h, w = img.shape
    use_labels = cfg.label_weight > 0
    has_lab = np.isin(lab, (LV_CAVITY, LV_MYOCARDIUM)).any(axis=(2, 3))  # (S, T)
    # channel weights per pair: labels count only where both the frame and ED have them
    n_img = 2 if cfg.texture_weight > 0 else 1
    weights = np.ones((n_s, n_t, n_img + (2 if use_labels else 0)), np.float32)
    if use_labels:
        both = has_lab & has_lab[:, ed_frame : ed_frame + 1]
        weights[..., n_img:] = cfg.label_weight * both[..., None]
    wt = torch.from_numpy(weights.reshape(n_s * n_t, -1))
    not_ed = torch.ones(n_s, n_t, 1, 1, 1)
    not_ed[:, ed_frame] = 0.0
    not_ed = not_ed.view(n_s * n_t, 1, 1, 1)

    ed_myo = lab[:, ed_frame] == LV_MYOCARDIUM
    if cfg.wall_erosion > 0:  # the wall's interior: its edges' pixels mix in the cavity's motion
        ed_myo = ndimage.binary_erosion(ed_myo, iterations=cfg.wall_erosion, axes=(1, 2))
    wall = torch.from_numpy(ed_myo.astype(np.float32))  # (S, H, W)
    polar = None
    if cfg.sliding > 0:
        polar = _polar_frame(lab, ed_frame, cfg.sliding_translation)
    factors = cfg.downsample or (1,) * len(cfg.grid_px)
    p: torch.Tensor | None = None
    prev: tuple[torch.Tensor, torch.Tensor] | None = None
    last = torch.zeros(n_s * n_t)
    steps = []
    levels = zip(cfg.grid_px, cfg.smooth_px, cfg.iterations, factors, strict=True)
    for grid_px, sigma, iters, factor in levels:
        ch = torch.from_numpy(
            _channels(img, lab if use_labels else None, ed_frame, sigma, cfg.texture_weight)
        )
        level = _Level(ch, ed_frame, wall, grid_px, factor, h, w, polar)
        # the control grid lives in full-resolution pixels at every level
        mx, my = bspline_matrix(h, grid_px), bspline_matrix(w, grid_px)
        gh, gw = mx.shape[1], my.shape[1]
        if p is None or prev is None:
            p = torch.zeros(n_s * n_t, 2, gh, gw)
        else:  # the finer grid that best reproduces the coarser level's field (least squares)
            with torch.no_grad():
                p = torch.linalg.pinv(mx) @ _dense(p, *prev) @ torch.linalg.pinv(my).T
        prev = (mx, my)
        p = p.detach().requires_grad_(True)
        q = p.view(n_s, n_t, 2, gh, gw)
        # Adam by hand (8 lines): torch.optim's first use imports torch._dynamo, ~3-9 s per
        # process here, more than a subject's registration
        m1, m2 = torch.zeros_like(p), torch.zeros_like(p)
        lr = cfg.learning_rate
        if cfg.step_follows_grid:
            lr *= grid_px / cfg.grid_px[0]
        checked = math.inf
        for it in range(1, iters + 1):
            p.grad = None
            loss, per_pair = level.loss(p, q, not_ed, wt, cfg)
            loss.backward()
            with torch.no_grad():
                m1.mul_(0.9).add_(p.grad, alpha=0.1)
                m2.mul_(0.999).addcmul_(p.grad, p.grad, value=0.001)
                step = lr * (m1 / (1 - 0.9**it))
                p.sub_(step / ((m2 / (1 - 0.999**it)).sqrt() + 1e-8))
            last = per_pair.detach()
            # early stop: the loss fell by less than stop_tolerance (relative) over a window
            if cfg.stop_tolerance > 0 and it % STOP_WINDOW == 0:
                value = float(loss.detach())
                if checked - value < cfg.stop_tolerance * abs(value):
                    log.debug("level %d px: loss plateau after %d steps", grid_px, it)
                    break
                checked = value
        steps.append(it)
    assert p is not None and prev is not None
    with torch.no_grad():
        disp = (_dense(p, *prev) * not_ed).view(n_s, n_t, 2, h, w).numpy()
    seconds = time.perf_counter() - t0
    log.debug("tracked %d slices x %d frames (%dx%d) in %.2f s", n_s, n_t, h, w, seconds)
    return SliceMotion(
        list(slices),
        ed_frame,
        origin,
        disp.astype(np.float32),
        last.view(n_s, n_t).numpy(),
        seconds,
        tuple(steps),
    )


def warp_points(motion: SliceMotion, index: int, points: np.ndarray) -> np.ndarray:
    """ED points (N, 2; image pixels x, y) of tracked slice ``index`` -> (T, N, 2) through time."""
    disp = torch.from_numpy(motion.displacement[index])  # (T, 2, H, W)
    n_t, _, h, w = disp.shape
    local = np.asarray(points, np.float32) - np.asarray(motion.origin, np.float32)
    gi = local[:, 0] * (2.0 / max(h - 1, 1)) - 1.0
    gj = local[:, 1] * (2.0 / max(w - 1, 1)) - 1.0
    grid = torch.from_numpy(np.stack([gj, gi], axis=-1)[None, :, None]).expand(n_t, -1, -1, -1)
    u = F.grid_sample(disp, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return np.asarray(points, np.float32)[None] + u[..., 0].permute(0, 2, 1).numpy()
