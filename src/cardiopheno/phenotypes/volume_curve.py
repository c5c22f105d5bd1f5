"""LV volume-curve features: peak ejection rate and peak early (E) and atrial (A) filling rates.

The LV cavity volume curve over the cine is one cardiac cycle, so it is differentiated as a
periodic signal: a Savitzky-Golay derivative (scipy.signal.savgol_filter, ``mode="wrap"``,
cubic, a window of about an eighth of the cycle) that smooths voxel noise without shifting the
peaks. Systole runs from ED forward to ES, diastole from ES forward to the next ED (cyclically).

- LV_PER: the largest emptying rate (-dV/dt) in systole, reported positive, in mL/s.
- LV_PFR_E: the first peak of dV/dt in diastole (early, passive filling).
- LV_PFR_A: the last peak of dV/dt in diastole when it is resolvable as a separate peak (a
  trough of diastasis between them, peak prominence at least ``PEAK_PROMINENCE`` of the largest
  filling rate); NaN when E and A fuse (fast heart rates, few frames) or no atrial kick.
All three are NaN when the frame interval is unknown or the cine has fewer than 8 frames.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import find_peaks, savgol_filter

from cardiopheno.phenotypes.lv_function import FRAME_INTERVAL_MISSING
from cardiopheno.phenotypes.registry import PhenotypeSpec, SubjectContext

FAMILY = "volume_curve"
OUTPUTS = [
    PhenotypeSpec("LV_PER", "mL/s", "LV peak ejection rate, max -dV/dt in systole"),
    PhenotypeSpec("LV_PFR_E", "mL/s", "LV peak early filling rate, first dV/dt peak in diastole"),
    PhenotypeSpec(
        "LV_PFR_A", "mL/s", "LV peak atrial filling rate, late dV/dt peak; NaN if not resolvable"
    ),
]
MIN_FRAMES = 8
PEAK_PROMINENCE = 0.1  # of the largest diastolic filling rate


def smoothing_window(n_frames: int) -> int:
    """Odd Savitzky-Golay window of about an eighth of the cycle, at least 5 frames."""
    w = max(5, int(round(n_frames / 8)))
    return w if w % 2 else w + 1


def volume_rate(volumes_ml: np.ndarray, frame_interval_ms: float) -> np.ndarray:
    """dV/dt in mL/s of a periodic volume curve (one cycle)."""
    return savgol_filter(
        np.asarray(volumes_ml, dtype=float),
        smoothing_window(len(volumes_ml)),
        polyorder=3,
        deriv=1,
        delta=frame_interval_ms / 1000.0,
        mode="wrap",
    )


def cyclic_range(start: int, stop: int, n: int) -> np.ndarray:
    """Frame indices from ``start`` to ``stop`` inclusive, going forward with wrap-around."""
    length = (stop - start) % n
    return (start + np.arange(length + 1)) % n


def compute(ctx: SubjectContext) -> dict[str, float]:
    nan = {s.name: math.nan for s in OUTPUTS}
    n = ctx.n_frames
    if n < MIN_FRAMES or not ctx.frame_interval_ms:
        why = f"{n} frames, fewer than {MIN_FRAMES}" if n < MIN_FRAMES else FRAME_INTERVAL_MISSING
        ctx.explain(list(nan), why)
        return nan
    ed, es = ctx.ed_frame, ctx.es_frame
    rate = volume_rate(ctx.lv_volume_curve, ctx.frame_interval_ms)
    systole = rate[cyclic_range(ed, es, n)]
    diastole = rate[cyclic_range(es, ed, n)]
    out = dict(nan)
    out["LV_PER"] = float(max(0.0, -systole.min()))
    top = float(diastole.max())
    if top <= 0:
        ctx.explain(["LV_PFR_E", "LV_PFR_A"], "the LV does not fill in diastole")
        return out
    peaks, _ = find_peaks(diastole, prominence=PEAK_PROMINENCE * top)
    if len(peaks) == 0:  # monotone filling: the E peak is at the edge of the window
        out["LV_PFR_E"] = top
        ctx.explain(["LV_PFR_A"], "no separate atrial filling peak (E and A fused)")
        return out
    out["LV_PFR_E"] = float(diastole[peaks[0]])
    if len(peaks) >= 2:
        out["LV_PFR_A"] = float(diastole[peaks[-1]])
    else:
        ctx.explain(["LV_PFR_A"], "no separate atrial filling peak (E and A fused)")
    return out
