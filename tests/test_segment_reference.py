"""The reference channel (``NetworkConfig.reference``): each slice is seen with its twin in the
cine's first frame (end-diastole on ECG-triggered cines), so the network can tell the phase; a
model without it starts one that computes exactly the same; the cache, training and inference
feed the right twin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cardiopheno.segment.augment import reverse_slices
from cardiopheno.segment.data import LabelledVolume, SliceCache, build_slice_cache
from cardiopheno.segment.infer import ComputeOptions, PassOptions, Segmenter, StepOptions
from cardiopheno.segment.network import (
    NetworkConfig,
    build_network,
    inflate_input_channels,
    load_checkpoint,
    save_checkpoint,
)
from cardiopheno.segment.train import TrainConfig, train, training_items
from cardiopheno.segment.transforms import PreprocessConfig, context_index

TINY_25D = NetworkConfig(channels=(8, 16), strides=(2,), num_res_units=1, context=1)
TINY_REF = NetworkConfig.from_dict({**TINY_25D.to_dict(), "reference": True})
PRE = PreprocessConfig(roi=48, crop=32)


def test_a_model_starts_one_with_a_reference_channel_that_computes_the_same():
    torch.manual_seed(0)
    old = build_network(TINY_25D).eval()
    new = build_network(TINY_REF).eval()
    assert TINY_REF.in_channels == 4
    init = inflate_input_channels(old.state_dict(), new.state_dict())
    widened = [k for k in init if init[k].shape != old.state_dict()[k].shape]
    assert widened and all(init[k].shape[1] == 4 for k in widened)
    assert all(not init[k][:, 3].any() for k in widened)  # the new channel starts at 0
    new.load_state_dict(init)
    x = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        out = new(torch.cat([x, torch.rand(5, 1, 32, 32)], dim=1))
        torch.testing.assert_close(out, old(x))
    # a 2D model goes to the centre slice channel, the reference channel still 0
    flat = build_network(NetworkConfig(channels=(8, 16), strides=(2,), num_res_units=1))
    init = inflate_input_channels(flat.state_dict(), new.state_dict())
    key = widened[0]
    torch.testing.assert_close(init[key][:, 1], flat.state_dict()[key][:, 0])
    assert not init[key][:, [0, 2, 3]].any()


def test_reversing_the_slice_order_leaves_the_reference_last():
    image = torch.arange(4.0)[:, None, None].expand(-1, 2, 2)
    assert reverse_slices(image, 3)[:, 0, 0].tolist() == [2, 1, 0, 3]


def _volume(image: np.ndarray, reference: np.ndarray, name: str) -> LabelledVolume:
    return LabelledVolume(
        "s", name, image, np.zeros(image.shape, np.uint8), (1.5, 1.5), "t", reference=reference
    )


def test_the_cache_stores_each_slice_at_the_first_frame_normalised_with_its_frame(tmp_path, rng):
    ed = rng.uniform(0, 100, (3, 40, 40)).astype(np.float32)
    es = 0.5 * ed  # a darker frame: alone it would normalise to the same values as ED
    path = build_slice_cache(
        [_volume(ed, ed, "ed"), _volume(es, ed, "es")], tmp_path / "c.npz", PRE
    )
    cache = SliceCache.load(path)
    assert cache.reference.shape == cache.image.shape == (6, 48, 48)
    np.testing.assert_array_equal(cache.reference[:3], cache.image[:3])  # ED is its own
    # the ES frame and its reference on one intensity scale, as the frames of a whole cine
    assert cache.image[3:].mean() < 0.7 * cache.reference[3:].mean()
    assert np.corrcoef(cache.reference[3:].ravel(), cache.image[:3].ravel())[0, 1] > 0.99
    assert cache.subset(np.arange(6) >= 3).reference.shape == (3, 48, 48)
    items = training_items(cache, context=1, reference=True)
    assert items[4]["image"].shape == (4, 48, 48)
    np.testing.assert_allclose(items[4]["image"][3], cache.reference[4] / 255.0)
    # a cache built without references cannot feed such a network
    plain = SliceCache(cache.image, cache.label, cache.subject, cache.volume, cache.source)
    with pytest.raises(ValueError, match="reference channel"):
        training_items(plain, context=1, reference=True)


class _Recorder(torch.nn.Module):
    """Stands in for the network: records which slices each input channel held (the stack's
    pixels hold their slice's index) and predicts background."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(x[:, :, 0, 0].round().long())
        return torch.zeros(x.shape[0], 4, *x.shape[2:])


def test_inference_feeds_each_slice_with_its_twin_in_the_first_frame(tmp_path):
    path = tmp_path / "ref.pt"
    save_checkpoint(path, build_network(TINY_REF), TINY_REF, PRE)
    seg = Segmenter(
        path,
        device="cpu",
        compute=ComputeOptions(slice_batch=4),
        passes=PassOptions(flip_ensemble=0),
    )
    seg.model = _Recorder()
    z, frames = 3, 3
    stack = torch.arange(z * frames, dtype=torch.float32)[:, None, None].expand(-1, 8, 8)
    seg.predict(stack.clone(), slices_per_frame=z)
    seen = torch.cat(seg.model.seen).numpy()
    np.testing.assert_array_equal(seen[:, :3], context_index(np.arange(z * frames) // z, 1))
    np.testing.assert_array_equal(seen[:, 3], np.arange(z * frames) % z)
    # a lone later frame with its first frame given apart
    seg.model.seen.clear()
    seg.predict(stack[z:].clone(), slices_per_frame=z, reference=stack[:z].clone() + 100)
    assert torch.cat(seg.model.seen)[:, 3].tolist() == [100, 101, 102, 100, 101, 102]


class _Brighter(torch.nn.Module):
    """Stands in for the network: label 1 where the slice is brighter than its reference."""

    def forward(self, x):
        lv = 10 * (x[:, 1] - x[:, 3])
        return torch.stack([torch.zeros_like(lv), lv, lv - 100, lv - 100], dim=1)


def test_a_lone_frame_with_its_reference_segments_as_within_its_cine(tmp_path, rng):
    """``segment_array(frame, reference=first)`` gives the frame the first frame's twins and
    intensity scale, as the whole cine does (without a heart crop, which is taken on the
    given frames' first)."""
    torch.manual_seed(0)
    path = tmp_path / "ref.pt"
    save_checkpoint(path, build_network(TINY_REF), TINY_REF, PRE)
    seg = Segmenter(
        path,
        device="cpu",
        steps=StepOptions(heart_crop=False),
        passes=PassOptions(tta=False, flip_ensemble=0),
    )
    seg.model = _Brighter()
    cine = rng.uniform(0, 100, (40, 40, 3, 2)).astype(np.float32)
    cine[..., 1] *= 0.6
    spacing = (1.5, 1.5, 8.0)
    whole = seg.segment_array(cine, spacing).labels[..., 1]
    alone = seg.segment_array(cine[..., 1], spacing, reference=cine[..., 0]).labels
    blind = seg.segment_array(cine[..., 1], spacing).labels
    np.testing.assert_array_equal(alone, whole)
    assert 0 < (whole == 1).mean() < 1 and not blind.any()  # its own reference: no change
    with pytest.raises(ValueError, match="reference frame"):
        seg.segment_array(cine[..., 1], spacing, reference=cine[:20, :, :, 0])


def test_training_a_model_with_a_reference_channel_from_a_25d_one(tmp_path, rng):
    n, size = 8, 48
    images = rng.uniform(0, 1, (n, size, size)).astype(np.float32)
    quantised = np.rint(images * 255).astype(np.uint8)
    cache = SliceCache(
        quantised,
        (images > 0.7).astype(np.uint8),
        np.array(["s"] * n),
        np.repeat(["ed", "es"], 4),
        np.array(["test"] * n),
        reference=np.concatenate([quantised[:4], quantised[:4]]),
    )
    init = tmp_path / "25d.pt"
    save_checkpoint(init, build_network(TINY_25D), TINY_25D, PRE)
    cfg = TrainConfig(epochs=1, batch_size=4, learning_rate=1e-3, network=TINY_REF.to_dict(),
                      device="cpu", init_checkpoint=str(init), patch=32)  # fmt: skip
    torch.set_num_threads(1)
    train(cache, tmp_path / "run", cfg, val_cache=cache, pre_cfg=PRE, resume=False)
    _, net_cfg, _, _ = load_checkpoint(tmp_path / "run" / "last.pt")
    assert net_cfg.reference and net_cfg.in_channels == 4
