"""PheWAS figures: Manhattan plot by phecode category with direction of effect and top hits."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cardiopheno.plots.notice import not_enough_data  # noqa: E402


def manhattan(
    phewas: pd.DataFrame,
    n_labels: int = 10,
    q_threshold: float = 0.05,
    title: str = "",
    reason: str = "",
):
    """-log10 p of every IDP x phecode test, phecodes ordered by category (x), triangles pointing
    up for OR > 1 and down for OR < 1; dashed lines at the Bonferroni and BH thresholds; the
    ``n_labels`` strongest hits labelled. A "not enough data" panel (with ``reason``) when the
    table has no tested pair."""
    d = phewas.dropna(subset=["p"]).copy()
    if d.empty:
        return not_enough_data(reason or "no IDP x phecode pair was tested", title or "PheWAS")
    d["phecode_num"] = pd.to_numeric(d["phecode"].str.extract(r"([\d.]+)")[0], errors="coerce")
    cats = sorted(d["category"].fillna("other").unique())
    d["category"] = d["category"].fillna("other")
    order = d[["category", "phecode", "phecode_num"]].drop_duplicates("phecode")
    order = order.sort_values(["category", "phecode_num", "phecode"]).reset_index(drop=True)
    xpos = pd.Series(np.arange(len(order)), index=order["phecode"])
    d["x"] = xpos[d["phecode"]].to_numpy()
    d["y"] = -np.log10(d["p"].clip(lower=1e-300))
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(11, 4.8))
    for i, cat in enumerate(cats):
        c = d[d["category"] == cat]
        for up, marker in ((True, "^"), (False, "v")):
            s = c[(c["estimate"] > 0) == up]
            ax.scatter(s["x"], s["y"], marker=marker, s=14, color=cmap(i % 20), alpha=0.8, lw=0)
    n_tests = len(d)
    ax.axhline(
        -np.log10(0.05 / max(n_tests, 1)), ls="--", color="k", lw=0.8, label="Bonferroni 0.05"
    )
    sig = d[d["q_bh"] < q_threshold]
    if len(sig):
        ax.axhline(
            -np.log10(sig["p"].max()), ls=":", color="grey", lw=0.8, label=f"BH q < {q_threshold}"
        )
    # A phecode and its parent often share every case (identical p): label one of them, and
    # stagger the labels vertically so neighbours do not overprint.
    top = d.sort_values("p").drop_duplicates(["idp", "p"]).head(n_labels)
    for i, (_, r) in enumerate(top.iterrows()):
        ax.annotate(
            f"{r['idp']}: {str(r['description'])[:30]} ({r['phecode']})", (r["x"], r["y"]),
            fontsize=6, xytext=(6, 8 - 9 * (i % 3)), textcoords="offset points",
            arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.4"},
        )  # fmt: skip
    mids = order.groupby("category").apply(
        lambda g: g.index.to_numpy().mean(), include_groups=False
    )
    ax.set_xticks(mids.to_numpy(), labels=mids.index, rotation=40, ha="right", fontsize=7)
    ax.set_ylabel("-log10 p")
    ax.set_xlim(-1, len(order))
    ax.legend(fontsize=7, frameon=False, loc="upper right")
    ax.set_title(
        title or f"PheWAS: {d['idp'].nunique()} IDPs x {len(order)} phecodes (^ OR > 1, v OR < 1)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
