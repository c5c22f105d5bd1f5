"""The inference steps one by one (segment.predict, ensemble, cleanup, areas, status), without a
trained model: a fake network whose logits are known, hand-made label maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cardiopheno.io.tables import read_table
from cardiopheno.segment.areas import frame_areas, subpixel_areas
from cardiopheno.segment.cleanup import PostProcess
from cardiopheno.segment.ensemble import dice, pass_counts, tta_from_members
from cardiopheno.segment.network import NetworkConfig
from cardiopheno.segment.predict import frame_index, predict_stack
from cardiopheno.segment.status import column_order, new_record, write_status
from cardiopheno.views import VIEWS

PLAIN = NetworkConfig(channels=(4, 8), strides=(2,), num_res_units=0)


def _left_half_is_lv(x: torch.Tensor) -> torch.Tensor:
    """Logits of 4 classes: LV (1) where the pixel's column is in the left half, else background."""
    n, _, h, w = x.shape
    logits = torch.zeros((n, 4, h, w))
    logits[:, 1, :, : w // 2] = 5.0
    logits[:, 0, :, w // 2 :] = 5.0
    return logits


def test_predict_runs_the_network_in_slice_batches_and_keeps_order():
    calls = []

    def forward(x):
        calls.append(x.shape[0])
        return _left_half_is_lv(x)

    pred = predict_stack(forward, PLAIN, torch.zeros((5, 6, 6)), 2, torch.device("cpu"))
    assert calls == [2, 2, 1]
    assert pred.labels.shape == (5, 6, 6)
    assert pred.labels.dtype == torch.uint8
    assert (pred.labels[:, :, :3] == 1).all() and (pred.labels[:, :, 3:] == 0).all()


def test_flip_ensemble_averages_the_flipped_members_and_keeps_each_one():
    pred = predict_stack(
        _left_half_is_lv, PLAIN, torch.zeros((2, 6, 6)), 8, torch.device("cpu"),
        probabilities=True, flips=((2,),),
    )  # fmt: skip
    # the mirrored member labels the right half: the mean is a tie everywhere
    assert len(pred.members) == 2
    assert (pred.members[0][:, :, :3] == 1).all() and (pred.members[1][:, :, 3:] == 1).all()
    np.testing.assert_allclose(pred.probs.sum(1).numpy(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(pred.probs[:, 1].numpy(), pred.probs[:, 0].numpy(), rtol=1e-6)


def test_tta_dice_compares_each_pass_with_the_plain_prediction():
    plain = torch.zeros((2, 4, 4), dtype=torch.uint8)
    plain[:, :2] = 1  # 8 LV pixels per slice
    shifted = torch.zeros_like(plain)
    shifted[:, 1:3] = 1  # half of them in common
    scores = tta_from_members([plain, plain.clone(), shifted], [0], 2, VIEWS["sa"])
    assert scores["lv"] == pytest.approx((1.0 + 0.5) / 2)
    assert scores["myo"] == 1.0  # absent from every pass
    assert dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    assert frame_index([0, 2], 3).tolist() == [0, 1, 2, 6, 7, 8]


def test_pass_counts_are_each_pass_voxels_at_ed_and_es():
    def to_input(member):
        return member.numpy().transpose(1, 2, 0)[:, :, None, :]  # X x Y x 1 x frames

    ed = np.ones((2, 3, 3), np.uint8)  # frames ED, ES of one slice: 9 LV voxels, then 0
    ed[1] = 0
    counts = pass_counts([torch.from_numpy(ed)], [0, 4], (0, 4), to_input, 4)
    assert counts.tolist() == [[[0, 9, 0, 0], [9, 0, 0, 0]]]


def test_postprocess_keeps_the_largest_component_per_class():
    labels = np.zeros((12, 12, 1, 1), np.uint8)
    labels[2:6, 2:6] = 1
    labels[9, 9] = 1  # a stray pixel
    PostProcess(VIEWS["sa"])(labels, (1.0, 1.0))
    assert int((labels == 1).sum()) == 16


def test_subpixel_area_sums_the_probability_near_the_label():
    labels = np.zeros((6, 6, 1, 2), np.uint8)
    labels[1:3, 1:3, 0, :] = 1
    probs = np.zeros((2, 1, 6, 6), np.float32)  # frame-major T*Z x classes x X x Y
    probs[:, 0, 1:3, 1:3] = 0.5
    probs[:, 0, 5, 5] = 1.0  # far from the label: not counted
    np.testing.assert_allclose(frame_areas(probs, labels, (1,), (2.0, 1.0)), [[4.0], [4.0]])
    # the same on slices x frames x classes x X x Y (one slice), with pixels of 1 mm2
    np.testing.assert_allclose(subpixel_areas(probs[None], labels, (1,), 1.0), [[2.0], [2.0]])


def test_status_table_has_every_column_once_in_order(tmp_path):
    view = VIEWS["la_2ch"]
    rows = [new_record(view, "1", reason="no la_2ch image in the manifest")]
    table = write_status(rows, tmp_path / "t.parquet", view, extra={"view": view.name})
    assert list(table.columns) == column_order(view)
    assert list(read_table(tmp_path / "t.parquet").columns) == column_order(view)
    assert column_order(VIEWS["sa"])[-1] == "RVEF_sd"
    assert "LVEDV_sd" not in column_order(view)
