"""Age/sex association figures: IDP against age by sex with fitted lines and bands; effects heatmap."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import statsmodels.formula.api as smf  # noqa: E402

from cardiopheno.plots.notice import not_enough_data  # noqa: E402

#: Fewest subjects of one sex for which a fitted line is drawn.
MIN_PER_SEX = 3

SEX_STYLE = {0.0: ("female", "tab:red"), 1.0: ("male", "tab:blue")}


def idp_by_age(frame: pd.DataFrame, idp: str, ranges: pd.DataFrame | None = None, unit: str = ""):
    """Scatter of ``idp`` against age per sex, the OLS line with its 95% CI and 95% prediction band,
    and the reference-range centiles (2.5th, 97.5th) of each age band when ``ranges`` is given.
    A "not enough data" panel when neither sex has ``MIN_PER_SEX`` subjects with a value."""
    counts = {
        name: len(frame.loc[frame["sex"] == sex, ["age", idp]].dropna())
        for sex, (name, _) in SEX_STYLE.items()
    }
    if max(counts.values()) < MIN_PER_SEX:
        return not_enough_data(
            f"{idp} has fewer than {MIN_PER_SEX} QC-passed subjects of either sex with a value "
            f"({', '.join(f'{k} {v}' for k, v in counts.items())})",
            f"{idp} by age and sex",
        )
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for sex, (name, colour) in SEX_STYLE.items():
        d = frame.loc[frame["sex"] == sex, ["age", idp]].dropna()
        if len(d) < MIN_PER_SEX:
            continue
        ax.scatter(d["age"], d[idp], s=4, alpha=0.25, color=colour, rasterized=True)
        fit = smf.ols(f"{idp} ~ age", data=d).fit()
        grid = pd.DataFrame({"age": np.linspace(d["age"].min(), d["age"].max(), 50)})
        pred = fit.get_prediction(grid).summary_frame(alpha=0.05)
        ax.plot(grid["age"], pred["mean"], color=colour, lw=2, label=f"{name} (n={len(d)})")
        ax.fill_between(
            grid["age"], pred["mean_ci_lower"], pred["mean_ci_upper"], color=colour, alpha=0.3
        )
        ax.fill_between(
            grid["age"], pred["obs_ci_lower"], pred["obs_ci_upper"], color=colour, alpha=0.08
        )
        if ranges is not None:
            r = ranges[(ranges["idp"] == idp) & (ranges["sex"] == name)].dropna(subset=["p2_5"])
            mid = (r["age_low"] + r["age_high"]) / 2
            ax.errorbar(
                mid, r["mean"], yerr=[r["mean"] - r["p2_5"], r["p97_5"] - r["mean"]],
                fmt="s", color=colour, mec="k", capsize=3, ms=4, lw=1,
            )  # fmt: skip
    ax.set_xlabel("age (years)")
    ax.set_ylabel(f"{idp} ({unit})" if unit else idp)
    ax.set_title(
        f"{idp} by age and sex: OLS fit, 95% CI and prediction band;\nsquares: band mean with 2.5th-97.5th centiles",
        fontsize=9,
    )
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def effects_heatmap(
    assoc: pd.DataFrame,
    terms: Sequence[str] = ("age", "age_male", "sex", "age:sex"),
    reason: str = "",
):
    """Standardised effects (SD of IDP per decade, or male-female in SD) of each IDP and term;
    cells with BH q < 0.05 are marked. A "not enough data" panel (with ``reason``) when the table
    has no estimate of these terms."""
    d = assoc[assoc["term"].isin(terms)]
    if d["estimate_std"].notna().sum() == 0:
        return not_enough_data(reason or "no age/sex association was estimable", "Age and sex")
    est = d.pivot(index="idp", columns="term", values="estimate_std").reindex(columns=list(terms))
    q = d.pivot(index="idp", columns="term", values="q_bh").reindex(columns=list(terms))
    lim = np.nanmax(np.abs(est.to_numpy())) if est.size else 1.0
    fig, ax = plt.subplots(figsize=(1.2 * len(terms) + 2.5, 0.28 * len(est) + 1.6))
    im = ax.imshow(est.to_numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(
        range(len(terms)),
        labels=[_term_label(t) for t in terms],
        rotation=30,
        ha="right",
        fontsize=8,
    )
    ax.set_yticks(range(len(est)), labels=est.index, fontsize=7)
    for (i, j), qv in np.ndenumerate(q.to_numpy()):
        if qv < 0.05:
            ax.text(j, i, "*", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label="standardised effect (SD)")
    ax.set_title("Age and sex effects (* BH q < 0.05)", fontsize=9)
    fig.tight_layout()
    return fig


def _term_label(term: str) -> str:
    return {
        "age": "age, women (SD/decade)",
        "age_male": "age, men (SD/decade)",
        "sex": "male - female (SD)",
        "age:sex": "age x sex (SD/decade)",
    }.get(term, term)
