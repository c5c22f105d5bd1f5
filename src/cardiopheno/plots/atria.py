"""The cohort's atrial volume curves over the cardiac cycle (from the phenotype stage's curves)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

CURVES = {"LA_biplane_volume_ml": "LA (biplane)", "RA_4ch_volume_ml": "RA (4-chamber)"}
GRID = np.linspace(0.0, 1.0, 51)


def resampled(curves: pd.DataFrame, name: str) -> pd.DataFrame:
    """One row per subject: its ``name`` curve on a common phase grid (cyclic linear
    interpolation; subjects with unmeasurable frames are interpolated across them)."""
    rows = {}
    for eid, g in curves[curves["curve"] == name].groupby("eid", sort=False):
        g = g.sort_values("phase")
        ok = np.isfinite(g["value"].to_numpy())
        if ok.sum() < max(3, len(g) // 2):
            continue
        x, y = g["phase"].to_numpy()[ok], g["value"].to_numpy()[ok]
        rows[eid] = np.interp(GRID, x, y, period=1.0)
    return pd.DataFrame.from_dict(rows, orient="index", columns=GRID)


def atrial_curves_figure(curves: pd.DataFrame, sex: pd.Series) -> Figure:
    """Median and interquartile band of each atrium's volume over the cine's cycle, by sex."""
    fig = Figure(figsize=(9, 3.8))
    axes = fig.subplots(1, len(CURVES), sharex=True)
    for ax, (name, title) in zip(axes, CURVES.items(), strict=True):
        table = resampled(curves, name)
        groups = sex.reindex(table.index)
        drawn = False
        for code, label, colour in ((0, "female", "tab:red"), (1, "male", "tab:blue")):
            part = table[groups == code]
            if part.empty:
                continue
            q = part.quantile([0.25, 0.5, 0.75])
            ax.fill_between(GRID, q.loc[0.25], q.loc[0.75], color=colour, alpha=0.15, lw=0)
            ax.plot(GRID, q.loc[0.5], color=colour, label=f"{label} (n={len(part)})")
            drawn = True
        ax.set_title(title)
        ax.set_xlabel("fraction of the cycle (0: first frame, ventricular ED)")
        ax.set_ylabel("volume (mL)")
        if drawn:
            ax.legend(frameon=False, fontsize=8)
        else:
            ax.text(0.5, 0.5, "no subject with this view", ha="center", transform=ax.transAxes)
    fig.suptitle("Atrial volume over the cardiac cycle: median and interquartile range")
    fig.tight_layout()
    return fig
