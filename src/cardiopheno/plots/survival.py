"""Survival figures: Kaplan-Meier curves by IDP quartile with at-risk counts; HR forest plot."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from lifelines import KaplanMeierFitter  # noqa: E402
from lifelines.plotting import add_at_risk_counts  # noqa: E402

from cardiopheno.plots.notice import not_enough_data  # noqa: E402

#: Fewest subjects at risk for which curves by quartile are drawn (two per quartile).
KM_MIN_SUBJECTS = 8


def km_by_quartile(frame: pd.DataFrame, outcomes: pd.DataFrame, outcome: str, idp: str):
    """Kaplan-Meier cumulative incidence-free survival of ``outcome`` by quartile of ``idp``."""
    od = outcomes[(outcomes["outcome"] == outcome) & outcomes["status"].isin(["event", "censored"])]
    d = od[["eid", "time_years", "event"]].merge(frame[["eid", idp]], on="eid").dropna()
    if len(d) < KM_MIN_SUBJECTS:
        return not_enough_data(
            f"{len(d)} subjects at risk with {idp} (Kaplan-Meier curves by quartile need "
            f"{KM_MIN_SUBJECTS})",
            f"{outcome.replace('_', ' ')} by {idp} quartile",
        )
    fig, ax = plt.subplots(figsize=(6.5, 5))
    # Quartiles of the ranks, so that tied IDP values cannot collapse two quartile edges.
    d["quartile"] = pd.qcut(
        d[idp].rank(method="first"), 4, labels=["Q1 (lowest)", "Q2", "Q3", "Q4 (highest)"]
    )
    fitters = []
    for q, g in d.groupby("quartile", observed=True):
        kmf = KaplanMeierFitter(label=f"{q}: {g[idp].min():.3g}-{g[idp].max():.3g}")
        kmf.fit(g["time_years"], g["event"].astype(int))
        kmf.plot_survival_function(ax=ax, ci_show=True)
        fitters.append(kmf)
    add_at_risk_counts(*fitters, ax=ax, rows_to_show=["At risk"], fontsize=6)
    ax.set_xlabel("years since imaging")
    ax.set_ylabel(f"free of {outcome.replace('_', ' ')}")
    ax.set_title(
        f"{outcome.replace('_', ' ')} by {idp} quartile (events: {int(d['event'].sum())})",
        fontsize=9,
    )
    ax.legend(fontsize=7, frameon=False)
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
