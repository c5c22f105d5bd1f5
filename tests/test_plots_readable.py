"""Figures a reader can use at any cohort size: Manhattan labels never overlap and a parent phecode
identical to its child is drawn once; Kaplan-Meier bands stay light (or off) and few events are
said in the title."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from cardiopheno.plots.phewas import LABEL_GID, manhattan
from cardiopheno.plots.survival import km_by_quartile
from cardiopheno.stats.multiple_testing import add_corrections
from cardiopheno.stats.phecodes import collapse_identical_parents, load_phecode_map, parent_phecode

STACKED = [f"WT_AHA_{i}" for i in range(1, 9)]  # eight IDPs with the same hit, as in the demo


def _phewas(n_codes: int, idps: list[str], seed: int = 0) -> pd.DataFrame:
    """A PheWAS table over ``n_codes`` real phecodes (including 401 and 401.1, identical), noise
    everywhere, the eight STACKED IDPs hitting 401.1 at nearly the same height and a dozen other
    phecodes hit by LVM at nearly the same height too."""
    rng = np.random.default_rng(seed)
    info = load_phecode_map().info
    pair = info[info["phecode"].isin(["401", "401.1"])]
    rest = info[~info["phecode"].isin(pair["phecode"])].sample(n_codes - 2, random_state=seed)
    codes = pd.concat([pair, rest])
    t = pd.DataFrame(
        [(i, *c) for i in idps for c in codes[["phecode", "description", "category"]].itertuples(index=False)],
        columns=["idp", "phecode", "description", "category"],
    )  # fmt: skip
    t["estimate"] = rng.normal(0, 0.05, len(t))
    t["p"] = rng.uniform(0.01, 1, len(t))
    t["n_cases"], t["n_controls"] = 200, 2000
    hit = t["phecode"].isin(["401", "401.1"]) & t["idp"].isin(STACKED)
    t.loc[hit, "estimate"] = 0.4
    t.loc[hit, "p"] = 1e-8
    parent, child = t["phecode"] == "401", t["phecode"] == "401.1"
    t.loc[parent, ["estimate", "p"]] = t.loc[child, ["estimate", "p"]].to_numpy()
    for k, code in enumerate(rest["phecode"].iloc[:12]):
        t.loc[(t["phecode"] == code) & (t["idp"] == "LVM"), "p"] = 10 ** -(7.5 + 0.04 * k)
    return add_corrections(t)


def test_parent_phecodes_are_one_level_up():
    assert parent_phecode("401.21") == "401.2"
    assert parent_phecode("401.2") == "401"
    assert parent_phecode("401") is None
    assert parent_phecode("CV_401.1") == "CV_401"


def test_a_parent_identical_to_its_child_collapses_into_the_child():
    t = pd.DataFrame(
        {"idp": ["A", "B"] * 5,
         "phecode": ["401.21"] * 2 + ["401.2"] * 2 + ["401"] * 2 + ["250.2"] * 2 + ["250"] * 2,
         "estimate": [0.3, -0.1] * 3 + [0.2, 0.1, 0.2, 0.1],
         "n_cases": [50] * 6 + [40, 40, 60, 60], "n_controls": 900})  # fmt: skip
    out = collapse_identical_parents(t)
    assert sorted(out["phecode"].unique()) == ["250", "250.2", "401.21"]  # 250 has more cases
    assert set(out.loc[out["phecode"] == "401.21", "same_as"]) == {"401.2, 401"}
    assert set(out.loc[out["phecode"] == "250.2", "same_as"]) == {""}


def _scatter_x(fig) -> set[float]:
    return {float(x) for c in fig.axes[0].collections for x in c.get_offsets()[:, 0]}


def test_manhattan_draws_a_parent_and_its_identical_child_as_one_column():
    t = _phewas(2, ["LVM", *STACKED])  # only 401 and 401.1
    fig = manhattan(t)
    assert len(_scatter_x(fig)) == 1
    labels = [x for x in fig.axes[0].texts if x.get_gid() == LABEL_GID]
    assert len(labels) == 1
    assert labels[0].get_text().startswith("401.1 (= 401) Essential hypertension: WT_AHA_")
    assert labels[0].get_text().endswith("+5")  # the eight stacked hits are one label


@pytest.mark.parametrize(("n_codes", "idps"), [(2, STACKED), (100, ["LVM", *STACKED]), (1500, ["LVM", "WT_AHA_1"])])  # fmt: skip
def test_manhattan_labels_never_overlap_and_stay_inside(n_codes, idps):
    fig = manhattan(_phewas(n_codes, idps), n_labels=10)
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_gid() == LABEL_GID]
    assert len(boxes) >= min(n_codes - 1, 5)
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    legend = ax.get_legend().get_window_extent(renderer)
    assert not any(b.overlaps(legend) for b in boxes)
    for b in boxes:
        assert frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1


def _survival(n: int, events: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"eid": [str(i) for i in range(n)], "LVEF": rng.normal(60, 5, n)})
    event = np.zeros(n, bool)
    event[rng.choice(n, events, replace=False)] = True
    outcomes = pd.DataFrame({"eid": frame["eid"], "outcome": "heart_failure",
                             "status": np.where(event, "event", "censored"), "event": event,
                             "time_years": rng.uniform(0.5, 10, n)})  # fmt: skip
    return frame, outcomes


def _bands(fig) -> list[PolyCollection]:
    return [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]


def test_km_bands_are_light_fills_without_edges_or_off_on_request():
    frame, outcomes = _survival(200, 40)
    bands = _bands(km_by_quartile(frame, outcomes, "heart_failure", "LVEF", band_alpha=0.1))
    assert len(bands) == 4
    for b in bands:
        assert b.get_alpha() == pytest.approx(0.1)
        assert b.get_edgecolor().size == 0 or np.all(b.get_edgecolor()[:, 3] == 0)
    assert _bands(km_by_quartile(frame, outcomes, "heart_failure", "LVEF", bands=False)) == []


def test_km_title_says_when_events_are_too_few_naming_the_threshold():
    frame, outcomes = _survival(200, 7)
    title = km_by_quartile(frame, outcomes, "heart_failure", "LVEF", min_events=20).axes[0]
    assert "7 events" in title.get_title() and "fewer than 20 events" in title.get_title()
    frame, outcomes = _survival(200, 40)
    title = km_by_quartile(frame, outcomes, "heart_failure", "LVEF", min_events=20).axes[0]
    assert "40 events" in title.get_title() and "fewer than" not in title.get_title()
