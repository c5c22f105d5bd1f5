"""PheWAS figures: Manhattan plot by phecode category with direction of effect and top hits."""

from __future__ import annotations

import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from adjustText import adjust_text  # noqa: E402

from cardiopheno.plots.notice import not_enough_data  # noqa: E402
from cardiopheno.stats.phecodes import collapse_identical_parents  # noqa: E402

log = logging.getLogger(__name__)

#: ``gid`` of the hit labels on the Manhattan plot (tests find them by it).
LABEL_GID = "phewas-hit-label"
#: IDPs named in one label before "+n more".
LABEL_IDPS = 3


def hit_labels(d: pd.DataFrame, n_labels: int, q_threshold: float) -> pd.DataFrame:
    """One label per phecode for the ``n_labels`` phecodes with the smallest p among those with a
    test below the BH threshold (the 3 strongest when none is): anchored at the phecode's strongest
    test and naming its IDPs below the threshold (or its strongest one).
    ``d`` needs ``x``, ``y`` and the PheWAS columns; returns ``x, y, text``, strongest first."""
    rows = []
    best = d.sort_values(["p", "idp"])
    hits = best[best["q_bh"] < q_threshold]
    # Without any hit below the threshold, the strongest few are named (the plot says n.s.).
    codes = (hits if len(hits) else best)["phecode"].drop_duplicates()
    for code in codes.head(n_labels if len(hits) else min(n_labels, 3)):
        g = best[best["phecode"] == code]
        sig = g.loc[g["q_bh"] < q_threshold, "idp"].tolist() or [g["idp"].iloc[0]]
        idps = ", ".join(sig[:LABEL_IDPS]) + (
            f" +{len(sig) - LABEL_IDPS}" if len(sig) > LABEL_IDPS else ""
        )
        desc = str(g["description"].iloc[0])
        desc = desc if len(desc) <= 28 else desc[:27] + "…"
        same = g["same_as"].iloc[0] if "same_as" in g.columns else ""
        code_text = f"{code} (= {same})" if same else str(code)
        rows.append(
            {"x": g["x"].iloc[0], "y": g["y"].iloc[0], "text": f"{code_text} {desc}: {idps}"}
        )
    return pd.DataFrame(rows, columns=["x", "y", "text"])


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def place_labels(ax, labels: pd.DataFrame, fontsize: float = 6.5) -> int:
    """Write ``labels`` (strongest first) near their points, pushed apart by adjustText; a label
    still overlapping a stronger one or the legend, or leaving the axes, is removed. Each kept label gets a
    leader line to its point. Returns the number removed."""
    if labels.empty:
        return 0
    texts = [
        ax.text(r.x, r.y, r.text, fontsize=fontsize, gid=LABEL_GID, zorder=5,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
        for r in labels.itertuples()
    ]  # fmt: skip
    adjust_text(
        texts,
        target_x=labels["x"].to_numpy(),
        target_y=labels["y"].to_numpy(),
        ax=ax,
        expand=(1.15, 1.6),
        force_text=(0.3, 0.6),
        only_move={"text": "xy", "static": "y", "explode": "xy", "pull": "xy"},
        ensure_inside_axes=True,
        iter_lim=500,
    )
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    legend = ax.get_legend()
    kept = [legend.get_window_extent(renderer)] if legend is not None else []
    removed = 0
    for text, r in zip(texts, labels.itertuples(), strict=True):
        box = text.get_window_extent(renderer)
        inside = (
            frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        )
        if not inside or any(_overlaps(box, k) for k in kept):
            text.remove()
            removed += 1
            continue
        kept.append(box)
        ax.annotate(
            "", xy=(r.x, r.y), xytext=text.get_position(), zorder=4,
            arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.4", "patchA": text, "shrinkB": 2},
        )  # fmt: skip
    return removed


def _category_order(d: pd.DataFrame) -> pd.DataFrame:
    d["phecode_num"] = pd.to_numeric(d["phecode"].str.extract(r"([\d.]+)")[0], errors="coerce")
    order = d[["category", "phecode", "phecode_num"]].drop_duplicates("phecode")
    return order.sort_values(["category", "phecode_num", "phecode"]).reset_index(drop=True)


def manhattan(
    phewas: pd.DataFrame,
    n_labels: int = 10,
    q_threshold: float = 0.05,
    title: str = "",
    reason: str = "",
):
    """-log10 p of every IDP x phecode test, phecodes ordered by category (x), triangles pointing
    up for OR > 1 and down for OR < 1; dashed lines at the Bonferroni and BH thresholds.

    A parent phecode whose tests repeat its child's (identical cases, e.g. 401 and 401.1) is drawn
    once, as the child, labelled "401.1 (= 401)". The ``n_labels`` phecodes with the smallest p
    are labelled, one label per phecode naming its significant IDPs, placed so that no two labels
    overlap (labels that cannot be placed are dropped and counted in the corner; every hit is in
    the top-hits table). A "not enough data" panel (with ``reason``) when no pair was tested."""
    d = phewas.dropna(subset=["p"])
    if d.empty:
        return not_enough_data(reason or "no IDP x phecode pair was tested", title or "PheWAS")
    n_tests = len(d)
    d = collapse_identical_parents(d)
    d["category"] = d["category"].fillna("other")
    cats = sorted(d["category"].unique())
    order = _category_order(d)
    xpos = pd.Series(np.arange(len(order)), index=order["phecode"])
    d["x"] = xpos[d["phecode"]].to_numpy()
    d["y"] = -np.log10(d["p"].clip(lower=1e-300))
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(11, 5))
    size = 18 if len(order) < 200 else 10
    for i, cat in enumerate(cats):
        c = d[d["category"] == cat]
        for up, marker in ((True, "^"), (False, "v")):
            s = c[(c["estimate"] > 0) == up]
            ax.scatter(s["x"], s["y"], marker=marker, s=size, color=cmap(i % 20), alpha=0.8, lw=0)
    bonferroni = -np.log10(0.05 / max(n_tests, 1))
    ax.axhline(bonferroni, ls="--", color="k", lw=0.8, label="Bonferroni 0.05")
    sig = d[d["q_bh"] < q_threshold]
    if len(sig):
        ax.axhline(
            -np.log10(sig["p"].max()), ls=":", color="grey", lw=0.8, label=f"BH q < {q_threshold}"
        )
    mids = order.groupby("category")["phecode"].apply(lambda g: g.index.to_numpy().mean())
    ax.set_xticks(mids.to_numpy(), labels=mids.index, rotation=40, ha="right", fontsize=7)
    ax.set_ylabel("-log10 p")
    ax.set_xlim(-1, len(order))
    # Head room above the strongest hit for its label.
    ax.set_ylim(0, max(d["y"].max(), bonferroni) * 1.3 + 0.5)
    ax.legend(fontsize=7, frameon=False, loc="upper right")
    merged = sum(len(s.split(", ")) for s in d.drop_duplicates("phecode")["same_as"] if s)
    n_codes = len(order)
    note = (
        f" ({merged} parent phecode{'s' * (merged > 1)} identical to a child drawn once)"
        if merged
        else ""
    )
    ax.set_title(
        title
        or (
            f"PheWAS: {d['idp'].nunique()} IDPs x {n_codes} phecode{'s' * (n_codes > 1)}, "
            f"{n_tests} tests{note} (^ OR > 1, v OR < 1)"
        ),
        fontsize=9,
    )
    fig.tight_layout()
    dropped = place_labels(ax, hit_labels(d, n_labels, q_threshold))
    if dropped:
        fig.text(
            0.005, 0.005, f"{dropped} more labels did not fit: every hit is in the top-hits table",
            fontsize=6.5, color="0.3",
        )  # fmt: skip
    return fig
