"""Survival figures: Kaplan-Meier curves by IDP quartile with at-risk counts; HR forest plot."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from lifelines import KaplanMeierFitter  # noqa: E402
from lifelines.plotting import add_at_risk_counts  # noqa: E402
from lifelines.statistics import multivariate_logrank_test  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

from cardiopheno.plots.notice import not_enough_data  # noqa: E402

#: Fewest subjects at risk for which curves by quartile are drawn (two per quartile).
KM_MIN_SUBJECTS = 8
#: Fewest events for which the title does not warn that the comparison means little (about five
#: per quartile; config ``figures.km_min_events``).
KM_MIN_EVENTS = 20
#: Hazard ratios marked on the forest plot's log axis (those inside its range).
HR_TICKS = (0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2, 3, 5, 10)
#: Opacity of the confidence bands (config ``figures.km_band_alpha``).
KM_BAND_ALPHA = 0.12


def km_by_quartile(
    frame: pd.DataFrame,
    outcomes: pd.DataFrame,
    outcome: str,
    idp: str,
    bands: bool = True,
    band_alpha: float = KM_BAND_ALPHA,
    min_events: int = KM_MIN_EVENTS,
):
    """Kaplan-Meier cumulative incidence-free survival of ``outcome`` by quartile of ``idp``.

    Curves are drawn in quartile order on a sequential colour scale; the 95% confidence bands
    (``bands``) are light fills (``band_alpha``) without edges, so that four overlapping bands stay
    readable. With fewer than ``min_events`` events in all the title says that the comparison of
    quartiles means little."""
    od = outcomes[(outcomes["outcome"] == outcome) & outcomes["status"].isin(["event", "censored"])]
    d = od[["eid", "time_years", "event"]].merge(frame[["eid", idp]], on="eid").dropna()
    name = outcome.replace("_", " ")
    if len(d) < KM_MIN_SUBJECTS:
        return not_enough_data(
            f"{len(d)} subjects at risk with {idp} (Kaplan-Meier curves by quartile need "
            f"{KM_MIN_SUBJECTS})",
            f"{name} by {idp} quartile",
        )
    fig, ax = plt.subplots(figsize=(6.5, 5))
    # Quartiles of the ranks, so that tied IDP values cannot collapse two quartile edges.
    d["quartile"] = pd.qcut(
        d[idp].rank(method="first"), 4, labels=["Q1 (lowest)", "Q2", "Q3", "Q4 (highest)"]
    )
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, 4))
    fitters = []
    for colour, (q, g) in zip(colours, d.groupby("quartile", observed=True), strict=False):
        kmf = KaplanMeierFitter(label=f"{q}: {g[idp].min():.3g}-{g[idp].max():.3g}")
        kmf.fit(g["time_years"], g["event"].astype(int))
        kmf.plot_survival_function(ax=ax, ci_show=bands, ci_alpha=band_alpha, color=colour, lw=1.6)
        fitters.append(kmf)
    for poly in ax.collections:  # the bands: fill only, no edge lines
        poly.set_edgecolor("none")
    add_at_risk_counts(*fitters, ax=ax, rows_to_show=["At risk"], fontsize=6)
    ax.set_xlabel("years since imaging")
    ax.set_ylabel(f"free of {name}")
    events = int(d["event"].sum())
    title = f"{name} by {idp} quartile: {events} events"
    if events:
        test = multivariate_logrank_test(d["time_years"], d["quartile"].astype(str), d["event"])
        title += f", log-rank p = {test.p_value:.2g}"
    if events < min_events:
        title += (
            f"\nfewer than {min_events} events: too few for the quartiles' comparison to mean much"
        )
    ax.set_title(title, fontsize=9, color="0.15" if events >= min_events else "#b2182b")
    ax.legend(fontsize=7, frameon=False, title=None)
    fig.tight_layout()
    return fig


def forest(cox: pd.DataFrame, reason: str = ""):
    """Hazard ratios per SD with 95% CIs, one row per outcome and IDP (log scale); a "not enough
    data" panel (with ``reason``) when no model was fitted."""
    d = cox.dropna(subset=["hazard_ratio"]).sort_values(["outcome", "idp"]).reset_index(drop=True)
    if d.empty:
        return not_enough_data(reason or "no Cox model was fitted", "Cox models")
    fig, ax = plt.subplots(figsize=(6.5, 0.25 * len(d) + 1.4))
    y = np.arange(len(d))[::-1]
    colours = {o: plt.get_cmap("tab10")(i % 10) for i, o in enumerate(d["outcome"].unique())}
    for yi, (_, r) in zip(y, d.iterrows(), strict=True):
        c = colours[r["outcome"]]
        ax.plot([r["hr_ci_low"], r["hr_ci_high"]], [yi, yi], color=c, lw=1.5)
        ax.plot(r["hazard_ratio"], yi, "s", color=c, ms=4)
    ax.axvline(1, color="k", lw=0.8)
    ax.set_xscale("log")
    # Plain hazard ratios as ticks (not 6 x 10^-1) over the drawn range.
    lo, hi = ax.get_xlim()
    ticks = [t for t in HR_TICKS if lo <= t <= hi]
    if len(ticks) >= 3:
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
    ax.set_yticks(
        y,
        labels=[
            f"{o.replace('_', ' ')} ~ {i}" for o, i in zip(d["outcome"], d["idp"], strict=True)
        ],
        fontsize=7,
    )
    ax.set_xlabel("hazard ratio per SD (95% CI)")
    ax.set_title(
        "Cox models adjusted for " + (d["covariates"].iloc[0] if len(d) else ""), fontsize=9
    )
    fig.tight_layout()
    return fig
