"""Per-subject phenotype uncertainty from the segmentation's own passes (segment.uncertainty)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from cardiopheno.phenotypes.registry import MYOCARDIAL_DENSITY_G_PER_ML
from cardiopheno.segment.infer import PassOptions, Segmenter, StepOptions
from cardiopheno.segment.network import NetworkConfig, build_network, save_checkpoint
from cardiopheno.segment.transforms import PreprocessConfig
from cardiopheno.segment.uncertainty import (
    MYOCARDIAL_DENSITY_G_PER_ML as DENSITY,
)
from cardiopheno.segment.uncertainty import (
    UNCERTAINTY_COLUMNS,
    pass_phenotypes,
    phenotype_spread,
)
from cardiopheno.stats.data import select_idps

TINY = NetworkConfig(channels=(4, 8), strides=(2,), num_res_units=0)


def _counts(lv_ed, lv_es, myo_ed=0, rv_ed=0, rv_es=0):
    """passes x (ED, ES) x labels from per-pass lists."""
    out = np.zeros((len(lv_ed), 2, 4), np.int64)
    out[:, 0, 1], out[:, 1, 1], out[:, 0, 2] = lv_ed, lv_es, myo_ed
    out[:, 0, 3], out[:, 1, 3] = rv_ed, rv_es
    return out


def test_spread_is_zero_when_every_pass_agrees():
    counts = _counts([100] * 3, [40] * 3, [80] * 3, [120] * 3, [60] * 3)
    spread = phenotype_spread(counts, 0.5)
    assert set(spread) == set(UNCERTAINTY_COLUMNS)
    assert all(v == 0.0 for v in spread.values())


def test_spread_of_two_passes_matches_the_hand_computed_values():
    counts = _counts([100, 120], [40, 40], [80, 90], [150, 150], [50, 70])
    values = pass_phenotypes(counts, 2.0)  # 2 mL voxels
    np.testing.assert_allclose(values["LVEDV"], [200, 240])
    np.testing.assert_allclose(values["LVEF"], [60.0, 100 * (240 - 80) / 240])
    np.testing.assert_allclose(values["LVM"], [168.0, 189.0])
    spread = phenotype_spread(counts, 2.0)
    sd2 = 1 / math.sqrt(2)  # SD (ddof=1) of two values = |a - b| / sqrt(2)
    assert spread["LVEDV_sd"] == pytest.approx(40 * sd2)
    assert spread["LVESV_sd"] == 0.0
    assert spread["LVM_sd"] == pytest.approx(21 * sd2)
    assert spread["LVEF_sd"] == pytest.approx(abs(60 - 100 * 160 / 240) * sd2)
    assert spread["RVESV_sd"] == pytest.approx(40 * sd2)
    assert DENSITY == MYOCARDIAL_DENSITY_G_PER_ML  # the phenotypes' definition


def test_spread_is_nan_with_one_pass_or_no_voxel_volume():
    one = _counts([100], [40])
    assert all(math.isnan(v) for v in phenotype_spread(one, 1.0).values())
    two = _counts([100, 110], [40, 40])
    assert all(math.isnan(v) for v in phenotype_spread(two, float("nan")).values())
    assert all(math.isnan(v) for v in phenotype_spread(None, 1.0).values())


def test_uncertainty_columns_are_documented_and_never_idps():
    frame = pd.DataFrame({"eid": ["a"], "LVEDV": [1.0], **{c: [0.1] for c in UNCERTAINTY_COLUMNS}})
    assert select_idps(frame, None) == ["LVEDV"]
    units = {c: s.unit for c, s in UNCERTAINTY_COLUMNS.items()}
    assert units["LVEDV_sd"] == "mL" and units["LVEF_sd"] == "%" and units["LVM_sd"] == "g"
    assert all("standard deviation" in s.description for s in UNCERTAINTY_COLUMNS.values())


# ------------------------------------------------------------------ through the Segmenter


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, build_network(TINY), TINY, PreprocessConfig(roi=64, crop=48))
    return path


def _cine(shift: int = 0) -> np.ndarray:
    """64 x 64 x 3 slices x 2 frames (1.8 mm pixels: the network grid): a bright disc, larger
    at frame 0 (ED) than at frame 1 (ES), its centre ``shift`` pixels off the middle."""
    xx, yy = np.meshgrid(np.arange(64) - 31.5 - shift, np.arange(64) - 31.5, indexing="ij")
    img = np.full((64, 64, 3, 2), 10.0, np.float32)
    for t, r in enumerate((12, 8)):
        img[xx**2 + yy**2 <= r**2, :, t] = 200.0
    return img


def _rule_network(seg: Segmenter, half: bool) -> None:
    """Replace the network by a rule: LV where the pixel is brighter than its slice's mean
    (commutes with flips: every pass agrees), and with ``half`` only in the first half of the
    rows (tied to the orientation: a flipped pass labels another part of the disc)."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        bright = x > x.mean(dim=(2, 3), keepdim=True)
        if half:
            rows = torch.arange(x.shape[2])[None, None, :, None] < x.shape[2] // 2
            bright = bright & rows
        logits = torch.zeros((x.shape[0], 4, *x.shape[2:]))
        logits[:, 0] = 5.0
        logits[:, 1] = torch.where(bright[:, 0], 10.0, 0.0)
        return logits

    seg._forward = forward


@pytest.mark.parametrize("flip_ensemble", [1, 0])
def test_passes_that_agree_give_zero_and_passes_that_disagree_give_a_spread(
    tiny_checkpoint, flip_ensemble
):
    spacing = (1.8, 1.8, 8.0)
    results = {}
    for half in (False, True):
        seg = Segmenter(
            tiny_checkpoint,
            "cpu",
            steps=StepOptions(heart_crop=False),
            passes=PassOptions(tta=True, flip_ensemble=flip_ensemble),
        )
        _rule_network(seg, half)
        results[half] = seg.segment_array(_cine(shift=4 if half else 0), spacing)
    agree, disagree = results[False], results[True]
    assert agree.frames == (0, 1)
    n_passes = 2 if flip_ensemble else 3  # ensemble member, else the two TTA flips
    assert agree.pass_counts.shape == (n_passes, 2, 4)
    assert agree.uncertainty["LVEDV_sd"] == 0.0 and agree.uncertainty["LVEF_sd"] == 0.0
    # the passes' LV volumes are those of the final labels (same post-processing, same grid)
    voxel_ml = 1.8 * 1.8 * 8.0 / 1000
    lvedv = (agree.labels[..., 0] == 1).sum() * voxel_ml
    assert agree.pass_counts[0, 0, 1] * voxel_ml == pytest.approx(lvedv)
    assert disagree.uncertainty["LVEDV_sd"] > 1.0  # mL
    assert disagree.uncertainty["LVESV_sd"] > 0.5
    assert math.isnan(disagree.uncertainty["RVEF_sd"])  # no RV in any pass: EF undefined


def test_no_second_pass_no_uncertainty(tiny_checkpoint):
    seg = Segmenter(
        tiny_checkpoint,
        "cpu",
        steps=StepOptions(heart_crop=False),
        passes=PassOptions(tta=False, flip_ensemble=0),
    )
    _rule_network(seg, False)
    out = seg.segment_array(_cine(), (1.8, 1.8, 8.0))
    assert out.pass_counts is None and out.uncertainty == {}


def test_error_prediction_ranks_and_compares_the_most_uncertain_with_the_rest():
    from cardiopheno.segment.uncertainty import error_prediction

    sd = [0.1, 0.2, 0.3, 0.4, 5.0, float("nan")]
    err = [1.0, 2.0, 3.0, 4.0, 10.0, 99.0]  # the NaN-uncertainty subject is left out
    out = error_prediction(sd, err, top=1)
    assert out["n"] == 5 and out["spearman_rho"] == pytest.approx(1.0)
    assert out["mae_top"] == 10.0 and out["mae_rest"] == pytest.approx(2.5)
    assert out["ratio"] == pytest.approx(4.0)
    reverse = error_prediction(sd[:5], err[::-1][1:], top=2)  # largest sd, smallest error
    assert reverse["spearman_rho"] == pytest.approx(-1.0) and reverse["ratio"] < 1
    assert math.isnan(error_prediction([1, 1, 1], [1, 2, 3])["spearman_rho"])  # no spread
