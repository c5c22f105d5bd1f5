"""Strain figures: AHA bull's-eyes of the cohort's mean segmental peak strain, mean global curves."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Wedge  # noqa: E402

from cardiopheno.io.tables import read_any  # noqa: E402

PathLike = str | os.PathLike
# Ring (outer radius) and start angle of each AHA segment in the standard bull's-eye: anterior at
# the top, septum on the left; basal outermost, six 60-degree sectors (four 90-degree apical).
_RINGS = {0: (1.0, 0.75), 1: (0.75, 0.5), 2: (0.5, 0.25)}


def _segment_wedges() -> list[tuple[int, float, float, float, float]]:
    """(segment, r_outer, width, theta1, theta2) in degrees, counter-clockwise from +x."""
    out = []
    for level in (0, 1):
        r_out, r_in = _RINGS[level]
        # segment 1 (anterior) at the top, then anteroseptal, inferoseptal... anticlockwise
        for i in range(6):
            centre = 90.0 + 60.0 * i
            out.append((1 + 6 * level + i, r_out, r_out - r_in, centre - 30.0, centre + 30.0))
    r_out, r_in = _RINGS[2]
    for i, seg in enumerate((13, 14, 15, 16)):  # anterior, septal, inferior, lateral
        centre = 90.0 + 90.0 * i
        out.append((seg, r_out, r_out - r_in, centre - 45.0, centre + 45.0))
    return out


def bulls_eye(ax, values: Sequence[float], vmin: float, vmax: float, cmap: str, title: str):
    """Draw 16 segment values (index 0 = AHA 1) as a bull's-eye on ``ax``; returns the mappable."""
    norm = plt.Normalize(vmin, vmax)
    cm = plt.get_cmap(cmap)
    for seg, r, width, t1, t2 in _segment_wedges():
        v = values[seg - 1]
        face = cm(norm(v)) if np.isfinite(v) else (0.85, 0.85, 0.85, 1.0)
        ax.add_patch(Wedge((0, 0), r, t1, t2, width=width, facecolor=face, edgecolor="black"))
        mid = np.radians((t1 + t2) / 2)
        rr = r - width / 2
        label = f"{v:.0f}" if np.isfinite(v) else "-"
        ax.text(rr * np.cos(mid), rr * np.sin(mid), label, ha="center", va="center", fontsize=7)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    return plt.cm.ScalarMappable(norm=norm, cmap=cm)


def bulls_eye_figure(frame: pd.DataFrame):
    """Mean peak Ecc and Err per AHA segment: all subjects, women, men."""
    groups = [("all", frame)]
    if "sex" in frame.columns:
        groups += [("women", frame[frame["sex"] == 0]), ("men", frame[frame["sex"] == 1])]
    fig, axes = plt.subplots(2, len(groups), figsize=(3.2 * len(groups), 6.4), squeeze=False)
    for row, (kind, cmap, lim) in enumerate(
        (("Ecc", "Blues_r", (-30, 0)), ("Err", "Reds", (0, 60)))
    ):
        for col, (name, df) in enumerate(groups):
            cols = [f"{kind}_AHA_{k}" for k in range(1, 17)]
            present = [c for c in cols if c in df.columns]
            means = (
                df[present].astype(float).mean().reindex(cols).to_numpy()
                if present
                else np.full(16, np.nan)
            )
            n = int(df[present].notna().any(axis=1).sum()) if present else 0
            sm = bulls_eye(axes[row, col], means, *lim, cmap, f"{kind} peak (%), {name}, n={n}")
        fig.colorbar(sm, ax=axes[row, :].tolist(), shrink=0.7, label=f"{kind} (%)")
    fig.suptitle("Mean segmental peak strain (AHA 16 segments; anterior top, septum left)")
    return fig


def curves_figure(curves: pd.DataFrame, eids: Sequence[str], n_points: int = 50):
    """Mean (+- SD) global Ecc and Err over the cycle, from ED (where strain is 0 by definition)
    as a fraction of the cycle; ``curves`` is the phenotype stage's long table (eid, curve,
    frame, phase, value)."""
    grid = np.linspace(0.0, 1.0, n_points, endpoint=False)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    sub = curves[curves["eid"].astype(str).isin(set(map(str, eids)))]
    for ax, kind in zip(axes, ("Ecc_global", "Err_global"), strict=True):
        rows = []
        for _, c in sub[sub["curve"] == kind].groupby("eid"):
            v = c.sort_values("frame")["value"].to_numpy(float)
            if len(v) < 2 or not np.isfinite(v).all():
                continue
            v = np.roll(v, -int(np.argmin(np.abs(v))))  # start at ED
            phase = np.arange(len(v) + 1) / len(v)
            rows.append(np.interp(grid, phase, np.append(v, v[0])))
        if rows:
            arr = np.array(rows)
            m, s = arr.mean(0), arr.std(0)
            ax.plot(grid, m, color="C0" if kind.startswith("Ecc") else "C3")
            ax.fill_between(grid, m - s, m + s, alpha=0.25, color=ax.lines[-1].get_color())
        ax.axhline(0.0, color="grey", lw=0.5)
        ax.set_xlabel("time since ED (fraction of the cycle)")
        ax.set_ylabel(f"{kind} (%)")
        ax.set_title(f"{kind}: mean +- SD, n={len(rows)}")
    fig.tight_layout()
    return fig


def strain_figures(
    phenotypes: PathLike, qc: PathLike | None, covariates: PathLike,
    curves: Sequence[PathLike], outputs: Sequence[PathLike], cfg: Mapping,
) -> None:  # fmt: skip
    """``strain_bullseye.{ext}`` and ``strain_curves.{ext}`` from QC-passed subjects."""
    from cardiopheno.plots.figures import save
    from cardiopheno.stats.pipeline import load_frame

    frame = load_frame(phenotypes, qc, covariates)
    dpi = cfg.get("dpi", 150)
    curve_table = pd.concat([read_any(p) for p in curves], ignore_index=True)
    ok = (
        frame["eid"] if "Ecc_global" not in frame else frame.loc[frame["Ecc_global"].notna(), "eid"]
    )
    for p in map(Path, outputs):
        fig = (
            bulls_eye_figure(frame)
            if p.stem == "strain_bullseye"
            else curves_figure(curve_table, ok)
        )
        save(fig, p, dpi)
