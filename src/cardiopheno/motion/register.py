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

Here: the settings, the crop and channels, the coarse-to-fine loop and its Adam steps. The
control grid and its field are in :mod:`~cardiopheno.motion.bspline`, one level's tensors and
loss in :mod:`~cardiopheno.motion.level`, the sliding penalty in :mod:`~cardiopheno.motion.sliding`.
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
from cardiopheno.motion.bspline import bspline_matrix, dense_field
from cardiopheno.motion.level import RegistrationLevel
from cardiopheno.motion.sliding import polar_frame

log = logging.getLogger(__name__)


STOP_WINDOW = 10  # steps between the early-stopping checks


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


def _pair_weights(lab: np.ndarray, ed_frame: int, cfg: MotionSettings):
    """(channel weights per pair (B, C): labels count only where both the frame and ED have
    them; 0 for the ED pairs, else 1 (B, 1, 1, 1): the fields of ED to itself stay zero)."""
    n_s, n_t = lab.shape[:2]
    use_labels = cfg.label_weight > 0
    has_lab = np.isin(lab, (LV_CAVITY, LV_MYOCARDIUM)).any(axis=(2, 3))  # (S, T)
    n_img = 2 if cfg.texture_weight > 0 else 1
    weights = np.ones((n_s, n_t, n_img + (2 if use_labels else 0)), np.float32)
    if use_labels:
        both = has_lab & has_lab[:, ed_frame : ed_frame + 1]
        weights[..., n_img:] = cfg.label_weight * both[..., None]
    wt = torch.from_numpy(weights.reshape(n_s * n_t, -1))
    not_ed = torch.ones(n_s, n_t, 1, 1, 1)
    not_ed[:, ed_frame] = 0.0
    return wt, not_ed.view(n_s * n_t, 1, 1, 1)


def _ed_wall(lab: np.ndarray, ed_frame: int, cfg: MotionSettings) -> torch.Tensor:
    """(S, H, W) the ED myocardium, where incompressibility and sliding are evaluated."""
    ed_myo = lab[:, ed_frame] == LV_MYOCARDIUM
    if cfg.wall_erosion > 0:  # the wall's interior: its edges' pixels mix in the cavity's motion
        ed_myo = ndimage.binary_erosion(ed_myo, iterations=cfg.wall_erosion, axes=(1, 2))
    return torch.from_numpy(ed_myo.astype(np.float32))


def _adam_steps(level: RegistrationLevel, p, q, not_ed, wt, cfg, grid_px: int, iters: int):
    """Optimise control grid ``p`` (in place) on one level; (the last per-pair data term, the
    steps taken). Adam by hand (8 lines): torch.optim's first use imports torch._dynamo,
    ~3-9 s per process here, more than a subject's registration."""
    m1, m2 = torch.zeros_like(p), torch.zeros_like(p)
    lr = cfg.learning_rate
    if cfg.step_follows_grid:
        lr *= grid_px / cfg.grid_px[0]
    checked = math.inf
    last, it = None, 0
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
    return last, it


def _optimise(img, lab, slices, ed_frame, cfg, origin, t0) -> SliceMotion:
    n_s, n_t, h, w = img.shape
    use_labels = cfg.label_weight > 0
    wt, not_ed = _pair_weights(lab, ed_frame, cfg)
    wall = _ed_wall(lab, ed_frame, cfg)
    polar = None
    if cfg.sliding > 0:
        polar = polar_frame(lab, ed_frame, cfg.sliding_translation)
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
        level = RegistrationLevel(ch, ed_frame, wall, grid_px, factor, h, w, polar)
        # the control grid lives in full-resolution pixels at every level
        mx, my = bspline_matrix(h, grid_px), bspline_matrix(w, grid_px)
        gh, gw = mx.shape[1], my.shape[1]
        if p is None or prev is None:
            p = torch.zeros(n_s * n_t, 2, gh, gw)
        else:  # the finer grid that best reproduces the coarser level's field (least squares)
            with torch.no_grad():
                p = torch.linalg.pinv(mx) @ dense_field(p, *prev) @ torch.linalg.pinv(my).T
        prev = (mx, my)
        p = p.detach().requires_grad_(True)
        q = p.view(n_s, n_t, 2, gh, gw)
        level_last, taken = _adam_steps(level, p, q, not_ed, wt, cfg, grid_px, iters)
        last = last if level_last is None else level_last
        steps.append(taken)
    assert p is not None and prev is not None
    with torch.no_grad():
        disp = (dense_field(p, *prev) * not_ed).view(n_s, n_t, 2, h, w).numpy()
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
