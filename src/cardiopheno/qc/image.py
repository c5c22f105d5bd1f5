"""Image checks: readable, dimensions, spacing, finite values, intensity range, frame count."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cardiopheno.io.nifti import Cine
from cardiopheno.qc.checks import CheckResult, QCThresholds


def check_image(cine: Cine, th: QCThresholds) -> list[CheckResult]:
    """All image checks on a loaded cine (readability is decided by whoever loaded it)."""
    out = [CheckResult.ok("img_readable")]
    nx, ny, nz, nt = cine.data.shape
    problems = []
    if not (th.min_in_plane <= min(nx, ny) and max(nx, ny) <= th.max_in_plane):
        problems.append(f"in-plane matrix {nx}x{ny} outside [{th.min_in_plane}, {th.max_in_plane}]")
    if not th.slices[0] <= nz <= th.slices[1]:
        problems.append(f"{nz} slices outside [{th.slices[0]}, {th.slices[1]}]")
    out.append(CheckResult("img_dims", not problems, "; ".join(problems)))

    sx, sy, sz = cine.spacing
    problems = []
    lo, hi = th.in_plane_spacing_mm
    if not (lo <= sx <= hi and lo <= sy <= hi):
        problems.append(f"in-plane spacing {sx:.3g}x{sy:.3g} mm outside [{lo}, {hi}]")
    lo, hi = th.slice_spacing_mm
    if not lo <= sz <= hi:
        problems.append(f"slice spacing {sz:.3g} mm outside [{lo}, {hi}]")
    out.append(CheckResult("img_spacing", not problems, "; ".join(problems)))

    finite = np.isfinite(cine.data)
    n_bad = int(finite.size - np.count_nonzero(finite))
    out.append(
        CheckResult("img_finite", n_bad == 0, f"{n_bad} NaN/infinite voxels" if n_bad else "")
    )

    data = cine.data if n_bad == 0 else np.where(finite, cine.data, 0)
    out.append(_intensity(data, th))
    out.append(_noise(data, th))
    out.append(_frames(nt, cine.frame_interval_ms, th))
    return out


def _frames(nt: int, interval_ms: float | None, th: QCThresholds) -> CheckResult:
    """Frame count, and the heart rate the frames imply (one cycle per cine) when timed."""
    problems = []
    lo, hi = th.frames
    if not lo <= nt <= hi:
        problems.append(f"{nt} frames outside [{lo}, {hi}]")
    if interval_ms and nt >= 2:
        hr = 60000.0 / (nt * interval_ms)
        lo, hi = th.heart_rate_bpm
        if not lo <= hr <= hi:
            problems.append(
                f"heart rate {hr:.4g} bpm ({nt} frames of {interval_ms:.4g} ms) outside "
                f"[{lo:g}, {hi:g}]"
            )
    return CheckResult("img_frames", not problems, "; ".join(problems))


def _intensity(data: np.ndarray, th: QCThresholds) -> CheckResult:
    sample = data[::2, ::2]  # a quarter of the voxels is plenty for percentiles
    p01, p99 = np.percentile(sample, [1, 99])
    vmax = float(sample.max())
    problems = []
    if vmax <= 0 or (p99 - p01) < th.min_relative_contrast * max(abs(vmax), 1e-12):
        problems.append(f"degenerate intensity range (p1 {p01:.3g}, p99 {p99:.3g}, max {vmax:.3g})")
    order = "F" if data.flags.f_contiguous else "C"  # either groups voxels per frame; no copy
    frame_std = data.reshape(-1, data.shape[3], order=order).std(axis=0)
    blank = np.nonzero(frame_std <= 1e-6 * max(float(frame_std.max()), 1e-12))[0]
    if blank.size:
        problems.append(f"blank frame(s) {blank.tolist()[:5]}")
    if vmax > 0:
        saturated = float(np.count_nonzero(sample >= vmax)) / sample.size
        if saturated > th.max_saturated_fraction:
            problems.append(f"{100 * saturated:.1f}% of voxels at the maximum (saturation)")
    return CheckResult("img_intensity", not problems, "; ".join(problems))


# Immerkaer's operator (difference of two Laplacians): zero on locally linear intensity, so its
# response is noise. Written out because skimage.restoration.estimate_sigma needs PyWavelets,
# which is not a dependency; this is 3 lines of scipy.ndimage.
_IMMERKAER = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def noise_sigma(image2d: np.ndarray) -> float:
    """Gaussian noise SD of a 2D image (Immerkaer, CVIU 1996)."""
    resp = ndimage.convolve(image2d.astype(np.float64), _IMMERKAER, mode="reflect")[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2.0) * np.mean(np.abs(resp)) / 6.0)


def contrast_to_noise(data: np.ndarray) -> float:
    """(p99 - median) of the mid slices of frame 0 over their noise SD (median over slices)."""
    nz = data.shape[2]
    zs = list(range(max(0, nz // 2 - 1), min(nz, nz // 2 + 2)))
    sigma = float(np.median([noise_sigma(data[:, :, z, 0]) for z in zs]))
    p50, p99 = np.percentile(data[:, :, zs, 0], [50, 99])
    return float((p99 - p50) / sigma) if sigma > 0 else float("inf")


def _noise(data: np.ndarray, th: QCThresholds) -> CheckResult:
    cnr = contrast_to_noise(data)
    if cnr >= th.min_cnr:
        return CheckResult.ok("img_noise")
    return CheckResult.fail(
        "img_noise", f"contrast-to-noise {cnr:.1f} ((p99 - median) / noise SD) below {th.min_cnr:g}"
    )
