"""QC of the long-axis views (ukbb_cardiac's atrial checks) and what a failure does downstream:
the atrial phenotypes are masked in the statistics; qc_pass (the short axis) is untouched."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cardiopheno.qc.views import check_atria
from cardiopheno.stats.data import analysis_frame


def _view(n_frames: int = 6, label: int = 1, size: int = 12) -> np.ndarray:
    labels = np.zeros((60, 60, 1, n_frames), np.uint8)
    for t in range(n_frames):
        r = size - (t % 3)  # areas vary smoothly
        labels[20 : 20 + r, 20 : 20 + r, 0, t] = label
    return labels


def _four_chamber(**kw) -> np.ndarray:
    la = _view(label=4, **kw)
    ra = _view(label=5, **kw)
    return np.roll(ra, 25, axis=0) + la


def test_clean_atria_pass_every_check():
    results, masked = check_atria({"la_2ch": _view(), "la_4ch": _four_chamber()})
    assert all(r.passed for r in results) and masked == set()


def test_each_atrial_failure_is_named_and_masks_only_that_atrium():
    two = _view()
    two[..., 3] = 0  # LA gone in one 2-chamber frame
    four = _four_chamber()
    four[2:10, 48:56, 0, 2] = 5  # a second RA piece in one frame
    results, masked = check_atria({"la_2ch": two, "la_4ch": four})
    by_name = {r.name: r for r in results}
    assert by_name["atria_present"].passed is False
    assert "LA absent in la_2ch frame(s) 3" in by_name["atria_present"].reason
    assert by_name["atria_single_component"].passed is False
    assert "RA in several pieces in la_4ch frame(s) 2" in by_name["atria_single_component"].reason
    assert masked == {"LAV_max", "LAV_min", "LASV", "LAEF", "RAV_max", "RAV_min", "RASV", "RAEF"}


def test_sudden_area_jump_fails_and_missing_views_skip():
    jumpy = _view()
    jumpy[20:45, 20:45, 0, 4] = 1  # area x4 in one frame
    results, masked = check_atria({"la_2ch": jumpy})
    assert {r.name: r.passed for r in results}["atria_smooth_area"] is False
    assert masked == {"LAV_max", "LAV_min", "LASV", "LAEF"}
    results, masked = check_atria({})
    assert all(r.passed is None for r in results) and not masked


def test_statistics_leave_out_masked_phenotypes_and_keep_the_rest():
    pheno = pd.DataFrame(
        {"eid": ["a", "b"], "LVEDV": [150.0, 160.0], "LAV_max": [60.0, 70.0], "LAEF": [55.0, 60.0]}
    )
    qc = pd.DataFrame(
        {"eid": ["a", "b"], "qc_pass": [True, True], "qc_masked_idps": ["LAV_max,LAEF", ""]}
    )
    cov = pd.DataFrame({"eid": ["a", "b"], "age": [60, 61], "sex": [0, 1]})
    frame = analysis_frame(pheno, qc, cov).set_index("eid")
    assert np.isnan(frame.at["a", "LAV_max"]) and np.isnan(frame.at["a", "LAEF"])
    assert frame.at["a", "LVEDV"] == 150.0 and frame.at["b", "LAV_max"] == 70.0
