"""2.5D input (``NetworkConfig.context``): each slice is seen with its neighbours of the same
frame; a 2D model's weights start a 2.5D one that computes exactly the same; training and
inference feed the right neighbours."""

from __future__ import annotations

import numpy as np
import torch

from cardiopheno import LV_CAVITY, RV_CAVITY
from cardiopheno.segment.data import SliceCache, basal_slices
from cardiopheno.segment.infer import ComputeOptions, PassOptions, Segmenter
from cardiopheno.segment.network import (
    NetworkConfig,
    build_network,
    inflate_input_channels,
    load_checkpoint,
    save_checkpoint,
)
from cardiopheno.segment.train import TrainConfig, train, training_items
from cardiopheno.segment.transforms import PreprocessConfig, context_index

TINY = NetworkConfig(channels=(8, 16), strides=(2,), num_res_units=1)
TINY_25D = NetworkConfig.from_dict({**TINY.to_dict(), "context": 1})
PRE = PreprocessConfig(roi=48, crop=32)


def test_context_index_stays_within_each_volume_and_repeats_its_end_slices():
    groups = np.array(["a", "a", "a", "b", "b", "c"])
    expected = [[0, 0, 1], [0, 1, 2], [1, 2, 2], [3, 3, 4], [3, 4, 4], [5, 5, 5]]
    np.testing.assert_array_equal(context_index(groups, 1), expected)
    np.testing.assert_array_equal(context_index(groups, 0), np.arange(6)[:, None])
    assert context_index(np.array([0, 0, 0, 0]), 2)[1].tolist() == [0, 0, 1, 2, 3]
    assert context_index(np.array([]), 1).shape == (0, 3)


def test_a_2d_model_starts_a_25d_one_that_computes_the_same_whatever_the_neighbours():
    torch.manual_seed(0)
    flat = build_network(TINY).eval()
    wide = build_network(TINY_25D).eval()
    init = inflate_input_channels(flat.state_dict(), wide.state_dict())
    widened = [k for k in init if init[k].shape != flat.state_dict()[k].shape]
    assert widened and all(init[k].shape[1] == 3 for k in widened)
    wide.load_state_dict(init)
    x = torch.rand(5, 1, 32, 32)
    neighbours = torch.rand(5, 2, 32, 32)
    with torch.no_grad():
        out = wide(torch.cat([neighbours[:, :1], x, neighbours[:, 1:]], dim=1))
        torch.testing.assert_close(out, flat(x))


class _Recorder(torch.nn.Module):
    """Stands in for the network: records which slices each input channel held (the stack's
    pixels hold their slice's index) and predicts background."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(x[:, :, 0, 0].round().long())
        return torch.zeros(x.shape[0], 4, *x.shape[2:])


def test_inference_feeds_each_slice_with_its_neighbours_in_the_same_frame(tmp_path):
    path = tmp_path / "tiny25.pt"
    save_checkpoint(path, build_network(TINY_25D), TINY_25D, PRE)
    seg = Segmenter(
        path,
        device="cpu",
        compute=ComputeOptions(slice_batch=4),
        passes=PassOptions(flip_ensemble=0),
    )
    seg.model = _Recorder()
    z, frames = 3, 4
    stack = torch.arange(z * frames, dtype=torch.float32)[:, None, None].expand(-1, 8, 8)
    seg.predict(stack.clone(), slices_per_frame=z)
    seen = torch.cat(seg.model.seen).numpy()
    np.testing.assert_array_equal(seen, context_index(np.arange(z * frames) // z, 1))
    assert seen[3].tolist() == [3, 3, 4] and seen[5].tolist() == [4, 5, 5]  # frame 1's ends


def test_training_a_25d_model_from_a_2d_one(tmp_path, rng):
    n, size = 12, 48
    images = rng.uniform(0, 1, (n, size, size)).astype(np.float32)
    labels = (images > 0.7).astype(np.uint8)
    cache = SliceCache(
        np.rint(images * 255).astype(np.uint8),
        labels,
        np.array([f"s{i // 4}" for i in range(n)]),
        np.array([f"v{i // 4}" for i in range(n)]),  # three volumes of four slices
        np.array(["test"] * n),
    )
    items = training_items(cache, context=1)
    assert items[4]["image"].shape == (3, size, size)
    np.testing.assert_array_equal(items[4]["image"][0], items[4]["image"][1])  # volume's start
    np.testing.assert_array_equal(items[5]["image"][0], items[4]["image"][1])  # slice 4 before 5
    init = tmp_path / "flat.pt"
    save_checkpoint(init, build_network(TINY), TINY, PRE)
    cfg = TrainConfig(epochs=1, batch_size=4, learning_rate=1e-3, network=TINY_25D.to_dict(),
                      device="cpu", init_checkpoint=str(init), patch=32)  # fmt: skip
    torch.set_num_threads(1)
    train(cache, tmp_path / "run", cfg, pre_cfg=PRE, resume=False)
    model, net_cfg, _, _ = load_checkpoint(tmp_path / "run" / "last.pt")
    assert net_cfg.context == 1 and net_cfg.in_channels == 3
    assert model.state_dict()["model.0.conv.unit0.conv.weight"].shape[1] == 3


def test_basal_slices_run_from_the_base_to_the_first_rv_slice():
    """The end-systolic slices weighted in training (--acdc-basal-es-repeat): from each ES
    stack's first slice (ACDC's base) through the first slice holding RV; other volumes, and
    stacks without RV, are left alone."""
    rv = [[0, 0, 1, 1, 0], [0, 0, 0, 0, 0], [0, 1, 1, 0, 0]]  # RV on slices, per volume
    labels = np.zeros((15, 4, 4), dtype=np.uint8)
    labels[np.flatnonzero(np.ravel(rv)), 1, 1] = RV_CAVITY
    labels[:, 2, 2] = LV_CAVITY  # the LV on every slice, as the experts' basal ES slices
    cache = SliceCache(
        np.zeros((15, 4, 4), np.uint8),
        labels,
        np.repeat(["p1", "p2", "p3"], 5),
        np.repeat(["p1_es", "p2_es", "p3_ed"], 5),
        np.array(["acdc"] * 15),
    )
    mask = basal_slices(cache, ["p1_es", "p2_es"], RV_CAVITY)
    np.testing.assert_array_equal(mask, np.array([1, 1, 1] + [0] * 12, dtype=bool))


def test_repeated_slices_count_that_many_times_in_an_epoch():
    cache = SliceCache(
        np.arange(3, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8),
        np.zeros((3, 4, 4), np.uint8),
        np.array(["s", "s", "s"]),
        np.array(["v", "v", "v"]),
        np.array(["test"] * 3),
        repeats=np.array([1, 3, 1]),
    )
    items = training_items(cache, context=1)
    firsts = [int(round(item["image"][1, 0, 0] * 255)) for item in items]
    assert firsts == [0, 1, 1, 1, 2]
    assert [int(round(item["image"][0, 0, 0] * 255)) for item in items] == [0, 0, 0, 0, 1]
    assert cache.subset(np.array([False, True, True])).repeats.tolist() == [3, 1]


def test_a_cache_given_twice_is_loaded_once_and_counted_twice(tmp_path):
    """Two copies of a one-volume cache side by side would read as one eight-slice volume."""
    path = tmp_path / "one.npz"
    np.savez(path, image=np.zeros((4, 4, 4), np.uint8), label=np.zeros((4, 4, 4), np.uint8),
             subject=np.array(["s"] * 4), volume=np.array(["v"] * 4),
             source=np.array(["t"] * 4))  # fmt: skip
    cache = SliceCache.load([path, path])
    assert len(cache) == 4 and cache.repeats.tolist() == [2] * 4
    assert len(training_items(cache, context=1)) == 8
    assert SliceCache.load(path).repeats is None
