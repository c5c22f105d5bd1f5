"""Sub-pixel areas: partial-volume training targets, the soft-target loss, areas from a model's
probabilities, the area file beside a label map, and the aortic family reading it."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from cardiopheno import ASCENDING_AORTA, DESCENDING_AORTA
from cardiopheno.io.areas import areas_path, read_areas, remove_areas, write_areas
from cardiopheno.io.nifti import save_nifti
from cardiopheno.io.tables import read_table
from cardiopheno.phenotypes import (
    SubjectContext,
    ViewData,
    compute_phenotypes,
    resolve_families,
    view_from_files,
)
from cardiopheno.segment.checkpoints import read_checkpoint
from cardiopheno.segment.data import SliceCache, aorta_volumes, build_slice_cache
from cardiopheno.segment.infer import Segmenter, segment_batch, subpixel_areas
from cardiopheno.segment.network import NetworkConfig, build_network, save_checkpoint
from cardiopheno.segment.train import SoftTargetLoss, TrainConfig, train
from cardiopheno.segment.transforms import PreprocessConfig
from cardiopheno.views import VIEWS

TINY = NetworkConfig(channels=(8, 16), strides=(2,), num_res_units=1, out_channels=3)


def disc_share(n: int, centre: tuple[float, float], radius: float, sub: int = 8) -> np.ndarray:
    """Each pixel's share inside a disc (``sub`` x ``sub`` supersampling), n x n."""
    off = (np.arange(sub) + 0.5) / sub - 0.5
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    inside = np.zeros((n, n))
    for a in off:
        for b in off:
            inside += np.hypot(ii + a - centre[0], jj + b - centre[1]) <= radius
    return inside / sub**2


@pytest.fixture(scope="module")
def aorta_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / "ao.npz"
    cfg = PreprocessConfig(**VIEWS["ao"].preprocess)
    return build_slice_cache(aorta_volumes(2, 5, frames_per_subject=3), path, cfg)


def test_aorta_cache_keeps_partial_volume_targets_on_the_network_grid(aorta_cache):
    cache = SliceCache.load(aorta_cache)
    assert len(cache) == 6 and set(cache.source) == {"synthetic_aorta"}
    assert cache.soft.shape == (6, 2, 192, 192) and cache.soft.dtype == np.uint8
    for c in (ASCENDING_AORTA, DESCENDING_AORTA):
        share = cache.soft[:, c - 1].astype(float) / 255
        labelled = (cache.label == c).sum(axis=(1, 2))
        # the shares sum to the labelled area within the partial-volume rim (a few pixels)
        np.testing.assert_allclose(share.sum(axis=(1, 2)), labelled, atol=8)
        assert ((share > 0.5) <= (cache.label == c) + (share < 0.51)).all()


def test_soft_targets_are_dropped_when_a_cache_has_none(aorta_cache, tmp_path, caplog):
    hard = tmp_path / "hard.npz"
    c = SliceCache.load(aorta_cache)
    np.savez(hard, image=c.image, label=c.label, subject=c.subject, volume=c.volume,
             source=c.source)  # fmt: skip
    with caplog.at_level(logging.WARNING):
        both = SliceCache.load([aorta_cache, hard])
    assert both.soft is None and len(both) == 12
    assert "soft targets dropped" in caplog.text
    assert SliceCache.load(aorta_cache).subset(np.arange(6) < 2).soft.shape[0] == 2


def test_soft_target_loss_is_least_where_probabilities_equal_the_shares():
    rng = np.random.default_rng(0)
    share = np.stack([disc_share(24, (12.3, 11.6), 6.4), disc_share(24, (5.0, 18.0), 3.2)])
    target = torch.tensor(np.concatenate([1 - share.sum(0, keepdims=True), share]))[None].float()
    loss = SoftTargetLoss(area_weight=1.0)
    at_target = torch.log(target.clamp_min(1e-6))
    value = float(loss(at_target, target))
    for scale in (0.02, 0.1, 0.5):  # any nudge of the logits costs
        for _ in range(5):
            nudge = torch.tensor(rng.normal(0, scale, at_target.shape)).float()
            assert float(loss(at_target + nudge, target)) > value
    # overconfident (hard) probabilities, the argmax of the shares, cost more still
    hard = torch.nn.functional.one_hot(target.argmax(1), 3).permute(0, 3, 1, 2).float()
    assert float(loss(10 * (hard - 0.5), target)) > value + 0.05
    # the area term alone: 10 % too little probability in class 1 costs 0.05 (mean of 2 classes)
    probs = target.clone()
    probs[:, 1] *= 0.9
    probs[:, 0] = 1 - probs[:, 1:].sum(1)
    logits = torch.log(probs.clamp_min(1e-7))
    area_only = SoftTargetLoss(1.0)(logits, target) - SoftTargetLoss(0.0)(logits, target)
    true_area = float(target[0, 1].sum())
    assert float(area_only) == pytest.approx(0.5 * 0.1 * true_area / (true_area + 1), rel=1e-3)


@pytest.fixture(scope="module")
def soft_checkpoint(aorta_cache, tmp_path_factory):
    """A tiny aortic network trained for one epoch on soft targets."""
    torch.set_num_threads(1)
    cfg = TrainConfig(epochs=1, batch_size=4, network=TINY.to_dict(), device="cpu", view="ao",
                      patch=64)  # fmt: skip
    pre = PreprocessConfig(**VIEWS["ao"].preprocess)
    out = tmp_path_factory.mktemp("soft")
    return train(SliceCache.load(aorta_cache), out, cfg, pre_cfg=pre, resume=False)


def test_training_on_soft_targets_marks_the_checkpoint(soft_checkpoint, tmp_path):
    blob = read_checkpoint(soft_checkpoint["best"])
    assert blob["soft_targets"] is True
    assert np.isfinite(soft_checkpoint["history"][0]["loss"])
    assert Segmenter(soft_checkpoint["best"], device="cpu", view="ao").subpixel_areas
    hard = tmp_path / "hard.pt"
    save_checkpoint(hard, build_network(TINY), TINY, PreprocessConfig(**VIEWS["ao"].preprocess))
    assert not Segmenter(hard, device="cpu", view="ao").subpixel_areas


def test_segment_batch_writes_the_areas_beside_model_labels_only(soft_checkpoint, tmp_path):
    from cardiopheno.synth.aorta import simulate_aorta
    from cardiopheno.synth.population import sample_population

    s = simulate_aorta(sample_population(1, seed=9).iloc[0], 9, 0, n_frames=5)
    image = tmp_path / "ao.nii.gz"
    save_nifti(image, s.image, s.affine, zooms=s.zooms)
    manifest = pd.DataFrame({"eid": ["1"], "ao": [str(image)], "seg_ao": [""]})
    seg = Segmenter(soft_checkpoint["best"], device="cpu", view="ao")
    out_dir, table = tmp_path / "seg", tmp_path / "t.parquet"
    segment_batch(manifest, ["1"], out_dir, table, seg, num_workers=0, progress=False)
    labels_path = out_dir / "1" / "seg_ao.nii.gz"
    areas = read_areas(labels_path, 5)
    assert set(areas) == {1, 2} and all(len(a) == 5 for a in areas.values())
    assert view_from_files(labels_path).areas is not None
    # a provided segmentation is measured by its pixels: no model areas beside it
    provided = tmp_path / "provided" / "seg_ao.nii.gz"
    provided.parent.mkdir()
    save_nifti(provided, s.labels, s.affine, zooms=s.zooms)
    manifest = manifest.assign(seg_ao=str(provided))
    segment_batch(manifest, ["1"], out_dir, table, seg, num_workers=0, progress=False)
    row = read_table(table).iloc[0]
    assert row["source"] == "provided" and row["seg_ao"] == str(provided.resolve())
    assert view_from_files(row["seg_ao"]).areas is None


def test_subpixel_areas_sum_the_share_near_the_final_label():
    share = disc_share(40, (15.2, 20.7), 7.3)  # area pi 7.3^2 = 167.4 px
    probs = np.zeros((1, 2, 2, 40, 40))  # slices x frames x (labels 1, 2) x X x Y
    probs[0, :, 0] = share
    probs[0, 1, 0, 34:37, 2:5] = 0.4  # stray probability far from the label: not counted
    labels = (share >= 0.5).astype(np.uint8)[:, :, None, None].repeat(2, axis=3)
    areas = subpixel_areas(probs, labels, (1, 2), pixel_area_mm2=2.0)
    assert areas.shape == (2, 2)
    np.testing.assert_allclose(areas[:, 0], 2.0 * np.pi * 7.3**2, rtol=2e-3)
    assert abs(labels[..., 0].sum() * 2.0 - areas[0, 0]) > 0.5  # not the pixel count
    np.testing.assert_array_equal(areas[:, 1], 0.0)  # no label 2, no area


def test_area_file_round_trip_and_stale_files(tmp_path, caplog):
    seg = tmp_path / "seg_ao.nii.gz"
    assert areas_path(seg).name == "seg_ao_areas.parquet"
    assert read_areas(seg, 3) is None
    write_areas(seg, np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.5]]), (1, 2))
    got = read_areas(seg, 3)
    np.testing.assert_array_equal(got[2], [2.0, 4.0, 6.5])
    with caplog.at_level(logging.WARNING):
        assert read_areas(seg, 4) is None  # another label map's frame count: ignored
    assert "pixels are counted instead" in caplog.text
    remove_areas(seg)
    assert not areas_path(seg).exists()


def test_aortic_family_reads_model_areas_beside_the_labels(tmp_path):
    labels = np.zeros((32, 32, 1, 4), np.uint8)
    labels[4:14, 4:14] = ASCENDING_AORTA  # 100 px x 2.25 mm2 = 225 mm2 in every frame
    labels[20:26, 20:26] = DESCENDING_AORTA
    seg = tmp_path / "seg_ao.nii.gz"
    save_nifti(seg, labels, np.diag([1.5, 1.5, 8.0, 1.0]), zooms=(1.5, 1.5, 8.0, 25.0))
    aao = np.array([230.0, 250.0, 241.5, 230.0])
    write_areas(seg, np.stack([aao, np.full(4, 81.0)], axis=1), (1, 2))
    view = view_from_files(seg)
    unsmoothed = {"aortic_function": {"smooth_ms": 0}}
    ctx = SubjectContext(None, None, covariates={"central_pp": 50.0}, views={"ao": view},
                         options=unsmoothed)  # fmt: skip
    out = compute_phenotypes(ctx, resolve_families(["aortic_function"]))
    assert out["AAo_max_area"] == 250.0 and out["AAo_min_area"] == 230.0
    assert out["AAo_distensibility"] == pytest.approx(20 / (230 * 50) * 1000)
    assert out["DAo_distensibility"] == 0.0
    # the same labels without the file: pixel counts, no change over the cycle
    remove_areas(seg)
    ctx = SubjectContext(None, None, covariates={"central_pp": 50.0},
                         views={"ao": view_from_files(seg)})  # fmt: skip
    out = compute_phenotypes(ctx, resolve_families(["aortic_function"]))
    assert out["AAo_max_area"] == pytest.approx(225.0) and out["AAo_distensibility"] == 0.0
    assert ViewData(labels, (1.5, 1.5, 8.0)).areas is None


def test_model_area_curves_are_smoothed_over_time_before_max_and_min():
    """A 100-frame cycle A(t) = 400 (1 + 0.1 w(t)) with alternating +-6 mm2 estimation noise:
    raw extremes inflate the change by 12 mm2 (30 %); a 10-ms smoothing (one frame) removes
    most of it; provided labels (no area file) are never smoothed."""
    n, dt = 100, 10.0
    t = np.arange(n)
    w = 0.5 * (1 - np.cos(2 * np.pi * t / n))  # 0..1, smooth
    clean = 400.0 * (1 + 0.1 * w)
    noisy = clean + 6.0 * (-1.0) ** t
    labels = np.zeros((24, 24, 1, n), np.uint8)
    labels[2:12, 2:12] = ASCENDING_AORTA
    labels[14:20, 14:20] = DESCENDING_AORTA

    def distensibility(options, areas, interval=dt):
        view = ViewData(labels, (1.0, 1.0, 8.0), interval, areas=areas)
        ctx = SubjectContext(None, None, covariates={"central_pp": 50.0}, views={"ao": view},
                             options=options)  # fmt: skip
        return compute_phenotypes(ctx, resolve_families(["aortic_function"]))["AAo_distensibility"]

    areas = {1: noisy, 2: np.full(n, 36.0)}
    true = 0.1 / 50 * 1000  # 2.0 x 10^-3 / mmHg
    raw = distensibility({"aortic_function": {"smooth_ms": 0}}, areas)
    assert raw == pytest.approx((noisy.max() - noisy.min()) / (noisy.min() * 50) * 1000)
    assert raw > 1.3 * true
    smoothed = distensibility({}, areas)  # the default, 10 ms
    assert abs(smoothed - true) < 0.05 * true
    assert distensibility({}, areas, interval=None) == pytest.approx(raw)  # SD in frames unknown
    assert distensibility({}, None) == 0.0  # label counts: constant here, and never smoothed
