"""Segmentation pre/post-processing, geometry round trips and the ACDC label order."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from monai.transforms import FillHoles

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY
from cardiopheno.segment.data import acdc_patient_ids, acdc_spacing, read_acdc_volume
from cardiopheno.segment.infer import (
    ENSEMBLE_FLIPS,
    ComputeOptions,
    PassOptions,
    Segmenter,
    StepOptions,
)
from cardiopheno.segment.network import (
    NetworkConfig,
    build_network,
    fold_batch_norm,
    resolve_precision,
    save_checkpoint,
)
from cardiopheno.segment.transforms import (
    SA_FILL,
    PreprocessConfig,
    SlicePipeline,
    fill_slice_holes,
    heart_center,
    keep_largest_per_frame,
    label_window,
    map_acdc_labels,
    postprocess,
    postprocess_frame,
    target_pixel,
)

TINY = NetworkConfig(channels=(4, 8), strides=(2,), num_res_units=0)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, build_network(TINY), TINY, PreprocessConfig(roi=64, crop=48))
    return path


def _disc(shape, center, radius, spacing=(1.0, 1.0)):
    xx, yy = np.meshgrid(
        (np.arange(shape[0]) - center[0]) * spacing[0],
        (np.arange(shape[1]) - center[1]) * spacing[1],
        indexing="ij",
    )
    return xx**2 + yy**2 <= radius**2


def test_acdc_label_order_is_mapped_to_ours():
    acdc = np.array([0, 1, 2, 3], dtype=np.uint8)  # bg, RV, myo, LV in ACDC
    assert map_acdc_labels(acdc).tolist() == [0, RV_CAVITY, LV_MYOCARDIUM, LV_CAVITY]
    with pytest.raises(ValueError, match="0..3"):
        map_acdc_labels(np.array([4]))


def test_acdc_patient_ranges_expand():
    ids = acdc_patient_ids("1-3,21")
    assert ids == ["patient001", "patient002", "patient003", "patient021"]


def _lv_stack(n_slices: int, n_lv: int, radius_px: float, size: int = 80) -> np.ndarray:
    """An ED label stack whose LV (myocardium disc) spans ``n_lv`` slices."""
    yy, xx = np.mgrid[:size, :size]
    disc = (xx - size / 2) ** 2 + (yy - size / 2) ** 2 <= radius_px**2
    label = np.zeros((n_slices, size, size), np.uint8)
    label[:n_lv, disc] = LV_MYOCARDIUM
    return label


def test_acdc_spacing_reproduces_voxel_volume_and_picks_the_anatomical_spacing():
    # a typical heart (10 slices of LV, 91 mm wide at 1.56 mm): 10 mm spacing
    px, py = acdc_spacing(24.4141, _lv_stack(10, 10, 29.0))
    assert px * py * 10.0 == pytest.approx(24.4141)
    # patient094-like: 10 slices, but only 37 mm wide at 10 mm (2.7 x as long as wide): 5 mm
    px, _ = acdc_spacing(14.1572, _lv_stack(10, 10, 15.5))
    assert px * px * 5.0 == pytest.approx(14.1572)
    # elongation would prefer 5 mm, but that pixel (2.2 mm) is outside ACDC's 0.7-1.9 mm
    assert acdc_spacing(24.4141, _lv_stack(20, 20, 29.0))[0] == pytest.approx(np.sqrt(2.44141))
    # no LV labelled: by the number of slices
    assert acdc_spacing(9.346, np.zeros((16, 8, 8)))[0] == pytest.approx(np.sqrt(9.346 / 5.0))
    assert acdc_spacing(9.346, np.zeros((10, 8, 8)))[0] == pytest.approx(np.sqrt(0.9346))


@pytest.mark.shared_data
def test_acdc_mapped_labels_reproduce_expert_volumes(shared_data):
    """Our LV label (ACDC's 3) times the voxel volume gives reference.csv's LVEDV."""
    ref = pd.read_csv(shared_data / "acdc" / "reference.csv").set_index("patient")
    r = ref.loc["patient001"]
    _, label = read_acdc_volume(shared_data / "acdc/volumes/patient001_frame01.h5")
    vv = r.voxel_volume_mm3 / 1000.0
    assert (label == LV_CAVITY).sum() * vv == pytest.approx(r.lvedv_ml, rel=1e-4)
    assert (label == RV_CAVITY).sum() * vv == pytest.approx(r.rvedv_ml, rel=1e-4)
    assert (label == LV_MYOCARDIUM).sum() * vv == pytest.approx(r.myo_ed_ml, rel=1e-4)


@pytest.mark.shared_data
def test_acdc_training_slices_weight_end_systole_and_the_base(shared_data, tmp_path):
    """--acdc-repeat / --acdc-es-repeat / --acdc-basal-es-repeat: how many times each slice of
    the one ACDC training cache counts in an epoch."""
    from dataclasses import replace

    from cardiopheno.segment.data import SliceCache, acdc_es_volumes, acdc_volumes
    from cardiopheno.segment.training_sources import TrainingData, acdc_repeats, build_caches

    es = list(acdc_volumes(shared_data / "acdc", ["patient001", "patient002"], phases=("ES",)))
    assert [v.volume for v in es] == ["patient001_frame12", "patient002_frame12"]
    data = TrainingData(acdc_root=str(shared_data / "acdc"), acdc_train="1", acdc_val="",
                        acdc_repeat=2, acdc_es_repeat=3)  # fmt: skip
    train_paths, val_paths = build_caches(data, tmp_path)
    assert [p.name for p in train_paths] == ["acdc_train.npz"]
    assert val_paths == []
    cache = SliceCache.load(train_paths)
    assert acdc_es_volumes(shared_data / "acdc", ["patient001"]) == ["patient001_frame12"]
    _, label = read_acdc_volume(shared_data / "acdc/volumes/patient001_frame12.h5")
    first_rv = int(np.flatnonzero((label == RV_CAVITY).any(axis=(1, 2)))[0])
    counts = acdc_repeats(cache, replace(data, acdc_basal_es_repeat=1))
    ed = cache.volume == "patient001_frame01"
    assert set(counts[ed]) == {2}  # acdc_repeat
    # ES: 2 + 3; from the base through the expert's first RV slice x (1 + 1)
    assert counts[~ed].tolist() == [10] * (first_rv + 1) + [5] * int((~ed).sum() - first_rv - 1)
    # every slice comes with its twin at end-diastole (the reference channel's input)
    ed_image, _ = read_acdc_volume(shared_data / "acdc/volumes/patient001_frame01.h5")
    np.testing.assert_array_equal(es[0].reference, ed_image)
    np.testing.assert_array_equal(cache.reference[ed], cache.image[ed])
    assert not np.array_equal(cache.reference[~ed], cache.image[~ed])


@pytest.mark.shared_data
def test_acdc_both_scales_caches_the_training_patients_on_the_working_grid_too(
    shared_data, tmp_path
):
    """--acdc-both-scales: a second ACDC training cache at inference's working grid, the same
    slices with the heart drawn larger by (pixel_mm / working pixel) squared."""
    from dataclasses import replace

    from cardiopheno.segment.data import SliceCache, acdc_spacing
    from cardiopheno.segment.training_sources import TrainingData, acdc_repeats, build_caches
    from cardiopheno.segment.transforms import target_pixel

    data = TrainingData(acdc_root=str(shared_data / "acdc"), acdc_train="1", acdc_val="",
                        acdc_repeat=2, acdc_both_scales=True)  # fmt: skip
    coarse = PreprocessConfig(pixel_mm=1.8, finest_pixel_mm=None)
    with pytest.raises(ValueError, match="finest_pixel_mm"):
        build_caches(data, tmp_path, coarse, coarse)
    working = replace(coarse, finest_pixel_mm=1.2)
    paths, _ = build_caches(data, tmp_path, coarse, working)
    assert [p.name for p in paths] == ["acdc_train.npz", "acdc_train_working_grid.npz"]
    on_coarse, on_working = SliceCache.load(paths[0]), SliceCache.load(paths[1])
    assert on_working.volume.tolist() == on_coarse.volume.tolist()
    ref = pd.read_csv(shared_data / "acdc" / "reference.csv").set_index("patient")
    _, label = read_acdc_volume(shared_data / "acdc/volumes/patient001_frame01.h5")
    spacing = acdc_spacing(ref.loc["patient001"].voxel_volume_mm3, label)
    px = target_pixel(working, spacing)[0]
    assert px < 1.8  # patient001 is finer than 1.8 mm: the two caches differ
    ratio = (on_working.label == LV_CAVITY).sum() / (on_coarse.label == LV_CAVITY).sum()
    assert ratio == pytest.approx((1.8 / px) ** 2, rel=0.05)
    both = SliceCache.load(paths)
    assert set(acdc_repeats(both, data)) == {2}  # both copies count as --acdc-repeat says


@pytest.mark.parametrize("spacing", [(1.3, 1.9), (1.8, 1.8), (0.9, 0.9)])
def test_label_round_trip_through_preprocessing_is_exact(spacing):
    """A disc taken onto the network grid, heart-cropped and inverted lands on itself."""
    cfg = PreprocessConfig(roi=96, crop=64)
    pipe = SlicePipeline(cfg)
    shape = (70, 90)
    lab = _disc(shape, (35, 45), 25.0, spacing).astype(np.float32)[None]
    net = pipe.preprocess_labels(lab, spacing)
    stack = pipe.preprocess(lab, spacing)
    assert tuple(stack.shape) == (1, 96, 96)
    cropped, tf = pipe.crop_to_heart(stack, heart_center(net.numpy(), cfg.roi))
    assert tuple(cropped.shape) == (1, 64, 64)
    back = pipe.invert(cropped.float(), cropped, tf, mode="nearest")[0].numpy() > 0.5
    assert back.shape == shape
    overlap = 2 * np.logical_and(back, lab[0] > 0).sum() / (back.sum() + lab[0].sum())
    assert overlap > 0.95  # nearest-neighbour resampling moves the edge by under a pixel


def test_working_pixel_keeps_finer_inputs_down_to_the_finest_pixel():
    plain, finest = PreprocessConfig(), PreprocessConfig(finest_pixel_mm=1.4)
    # UK Biobank's grid is kept by both; coarse input goes to 1.8 mm as before
    assert target_pixel(plain, (1.8, 1.8)) == target_pixel(finest, (1.8, 1.8)) == (1.8, 1.8)
    assert target_pixel(plain, (2.4, 2.4)) == target_pixel(finest, (2.4, 2.4)) == (1.8, 1.8)
    # a typical ACDC pixel: downsampled without, kept with finest_pixel_mm
    assert target_pixel(plain, (1.5625, 1.5625)) == (1.8, 1.8)
    assert target_pixel(finest, (1.5625, 1.5625)) == (1.5625, 1.5625)
    assert target_pixel(finest, (0.7, 1.5)) == (1.4, 1.5)  # finer still: to the finest
    assert PreprocessConfig.from_dict({"pixel_mm": 1.8}).finest_pixel_mm is None  # old models


def test_postprocessing_keeps_the_myocardial_ring_around_the_cavity():
    """The LV cavity is the myocardium's enclosed hole: it must not be filled with myocardium."""
    ring = _disc((60, 60), (30, 30), 20) & ~_disc((60, 60), (30, 30), 14)
    frame = np.zeros((60, 60, 2), np.uint8)
    frame[ring] = LV_MYOCARDIUM
    frame[_disc((60, 60), (30, 30), 14)] = LV_CAVITY
    np.testing.assert_array_equal(postprocess_frame(frame), frame)


def test_postprocessing_keeps_largest_component_and_fills_holes():
    frame = np.zeros((40, 40, 3), np.uint8)
    frame[10:30, 10:30, :] = LV_CAVITY
    frame[18:21, 18:21, 1] = LV_MYOCARDIUM  # a hole in the cavity on slice 1
    frame[2:4, 2:4, 0] = LV_CAVITY  # a stray island
    out = postprocess_frame(frame)
    assert out[2:4, 2:4, 0].max() == 0
    assert (out[10:30, 10:30, :] == LV_CAVITY).all()


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 4)),
              elements=st.sampled_from([0, 1, 2, 3])))  # fmt: skip
def test_filling_all_slices_at_once_equals_slice_by_slice(labels):
    fill = FillHoles(applied_labels=list(SA_FILL))
    expected = np.stack(
        [np.asarray(fill(labels[None, :, :, z]))[0] for z in range(labels.shape[2])], axis=-1
    )
    np.testing.assert_array_equal(fill_slice_holes(labels), expected)


def test_postprocess_of_a_cine_equals_frame_by_frame(rng):
    # (noise whose largest components differ in size: MONAI's pick among equals is arbitrary)
    cine = rng.choice(4, size=(30, 28, 3, 4), p=[0.4, 0.3, 0.2, 0.1]).astype(np.uint8)
    cine[12:20, 10:18] = LV_CAVITY  # a cavity with holes left by the noise around it
    expected = np.stack([postprocess_frame(cine[..., t]) for t in range(4)], axis=-1)
    np.testing.assert_array_equal(postprocess(cine.copy()), expected)


def test_largest_components_of_all_frames_at_once_equal_monai_frame_by_frame(rng):
    # per frame, six bars of distinct sizes in random cells and classes (several components
    # per class); in the last frame one class only, and pixels touching diagonally (one
    # component at MONAI's full connectivity) that outweigh a 2 x 2 square
    cine = np.zeros((40, 40, 1, 5), np.uint8)
    for t in range(4):
        for cell, length in zip(rng.permutation(16)[:6], rng.permutation(8)[:6] + 1, strict=True):
            x, y = divmod(int(cell), 4)
            cine[10 * x : 10 * x + length, 10 * y : 10 * y + 2, 0, t] = rng.integers(1, 3)
    cine[[0, 1, 2, 3, 4], [0, 1, 2, 3, 4], 0, 4] = 1
    cine[20:22, 20:22, 0, 4] = 1
    expected = np.stack(
        [postprocess_frame(cine[..., t], fill_holes=False, classes=(1, 2)) for t in range(5)],
        axis=-1,
    )
    out = keep_largest_per_frame(cine, (1, 2))
    np.testing.assert_array_equal(out, expected)
    assert (out[..., :4] > 0).sum() < (cine[..., :4] > 0).sum()  # something was removed


def test_label_window_holds_the_labels_with_margin_on_the_stride_grid():
    labels = np.zeros((2, 64, 64), np.uint8)
    labels[1, 20:25, 40:44] = 1
    (x0, y0), (x1, y1) = label_window(labels, 64, margin=5, multiple=8)
    assert (x0, x1, y0, y1) == (8, 32, 32, 56)  # 15..29 and 35..48, out to multiples of 8
    assert label_window(labels, 64, margin=40, multiple=8) == ((0, 0), (64, 64))  # clipped
    assert label_window(np.zeros((1, 64, 64)), 64, 5, 8) is None


def test_whole_field_view_on_a_label_window_keeps_the_whole_field_labels(monkeypatch):
    """The aortic model (whole field, 192 px) run on a window around frame 0's vessels gives
    the labels of the whole field, on fewer pixels."""
    from cardiopheno.synth.aorta import simulate_aorta
    from cardiopheno.synth.population import sample_population

    row = sample_population(5, seed=202).iloc[2]
    cine = simulate_aorta(row, 202, 2, n_frames=6)
    spacing = cine.zooms[:2]
    whole = Segmenter(device="cpu", view="ao", steps=StepOptions(heart_crop=False))
    windowed = Segmenter(device="cpu", view="ao")
    assert windowed.field_crop and not whole.field_crop
    grids = []
    predict = windowed.predict
    monkeypatch.setattr(
        windowed, "predict", lambda stack, **kw: grids.append(stack.shape) or predict(stack, **kw)
    )
    expected = whole.segment_array(cine.image.astype(np.float32), spacing).labels
    got = windowed.segment_array(cine.image.astype(np.float32), spacing).labels
    roi = windowed.pre_cfg.roi
    assert grids[-1][1] * grids[-1][2] < 0.8 * roi * roi  # the cine ran on a smaller window
    assert all(n % windowed.stride == 0 for n in grids[-1][1:])
    np.testing.assert_array_equal(got, expected)
    assert (expected == 1).any() and (expected == 2).any()


def test_folding_batch_norm_keeps_the_network_output():
    torch.manual_seed(0)
    net = build_network(NetworkConfig(channels=(4, 8, 16), strides=(2, 2), num_res_units=1))
    for m in net.modules():  # trained-looking statistics, not the identity of a fresh norm
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        before = net(x)
        after = fold_batch_norm(net)(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_flip_ensemble_averages_the_flipped_predictions(tiny_checkpoint, rng):
    seg = Segmenter(
        tiny_checkpoint,
        "cpu",
        compute=ComputeOptions(slice_batch=2),
        passes=PassOptions(flip_ensemble=3),
    )
    x = torch.as_tensor(rng.random((5, 48, 48), dtype=np.float32))
    pred = seg.predict(x, probabilities=True, flips=seg.flips)
    with torch.no_grad():
        members = [torch.softmax(seg.model(x[:, None]), 1)]
        for dims in ENSEMBLE_FLIPS:
            d = tuple(a + 1 for a in dims)
            members.append(torch.flip(torch.softmax(seg.model(torch.flip(x[:, None], d)), 1), d))
    mean = torch.stack(members).mean(0)
    torch.testing.assert_close(pred.probs, mean, rtol=1e-4, atol=1e-5)
    assert len(pred.members) == 4
    torch.testing.assert_close(pred.members[0], members[0].argmax(1).to(torch.uint8))
    assert (pred.labels == mean.argmax(1)).float().mean() > 0.99  # ties may break either way


def test_flip_ensemble_fills_the_tta_columns_without_extra_passes(tiny_checkpoint, rng):
    z, t = 4, 3
    img = rng.normal(100, 20, (50, 44, z, t)).astype(np.float32)
    slices = {}
    for k in (0, 1):
        seg = Segmenter(tiny_checkpoint, "cpu", passes=PassOptions(tta=True, flip_ensemble=k))
        forward, calls = seg._forward, []
        seg._forward = lambda x, f=forward, c=calls: c.append(len(x)) or f(x)
        out = seg.segment_array(img, (1.5, 1.4))
        assert set(out.tta) == {"lv", "myo", "rv"}
        assert all(0.0 <= v <= 1.0 for v in out.tta.values())
        slices[k] = sum(calls)
    # first pass on frame 0, then every slice once per member; without an ensemble the TTA
    # measure costs two flipped passes over the ED and ES frames (one frame when they coincide)
    assert slices[1] == z + 2 * z * t
    assert slices[0] - (z + z * t) in (2 * z, 4 * z)
    with pytest.raises(ValueError, match="flip_ensemble"):
        Segmenter(tiny_checkpoint, "cpu", passes=PassOptions(flip_ensemble=4))


def test_precision_auto_is_float32_on_cpu_and_bfloat16_warns_without_amx(monkeypatch, caplog):
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu) is None
    assert resolve_precision("float32", cpu) is None
    assert resolve_precision("auto", gpu) is torch.float16
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": True})
    assert resolve_precision("bfloat16", cpu) is torch.bfloat16
    assert "emulated" not in caplog.text
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": False})
    assert resolve_precision("bfloat16", cpu) is torch.bfloat16
    assert "bfloat16 on a CPU without amx_bf16 is emulated" in caplog.text
    with pytest.raises(ValueError, match="precision must be one of auto, float32"):
        resolve_precision("half", cpu)


def test_bfloat16_segmentation_matches_float32(tiny_checkpoint, rng):
    img = rng.normal(100, 20, (50, 44, 4, 3)).astype(np.float32)
    labels = {}
    for precision in ("float32", "bfloat16"):
        seg = Segmenter(
            tiny_checkpoint,
            "cpu",
            compute=ComputeOptions(precision=precision),
            passes=PassOptions(tta=False),
        )
        assert seg.precision == precision
        labels[precision] = seg.segment_array(img, (1.5, 1.4)).labels
    assert (labels["float32"] == labels["bfloat16"]).mean() > 0.95


@pytest.mark.parametrize("ndim", [3, 4])
def test_segment_file_keeps_shape_and_affine(tmp_path, tiny_checkpoint, ndim, rng):
    shape = (50, 44, 4, 3)[:ndim]
    affine = np.array([[0, -1.4, 0, 10], [1.5, 0, 0, -20], [0, 0, 8.0, 5], [0, 0, 0, 1]])
    img = nib.Nifti1Image(rng.normal(100, 20, shape).astype(np.int16), affine)
    img.header.set_zooms((1.5, 1.4, 8.0, 30.0)[:ndim])
    src = tmp_path / "sa.nii.gz"
    nib.save(img, src)
    seg = Segmenter(tiny_checkpoint, device="cpu", passes=PassOptions(tta=True))
    result = seg.segment_file(src, tmp_path / "seg.nii.gz")
    out = nib.load(tmp_path / "seg.nii.gz")
    assert out.shape == shape
    assert np.allclose(out.affine, img.affine)
    assert out.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(out.dataobj))) <= {0, 1, 2, 3}
    assert set(result.tta) == {"lv", "myo", "rv"}


def test_nifti_pair_manifest_feeds_the_slice_cache(tmp_path, rng):
    """Image/label pairs listed in a manifest become cached slices with their labels (only the
    labelled frames), on the 1.8 mm grid: label areas scale by (spacing / 1.8)^2."""
    from cardiopheno.segment.data import SliceCache, build_slice_cache, nifti_pair_volumes

    shape = (60, 60, 3, 2)
    lab = np.zeros(shape, np.uint8)
    lab[..., 0][_disc(shape[:2], (30, 30), 10)] = LV_CAVITY  # frame 1 left unlabelled
    img = (rng.normal(50, 5, shape) + 400 * (lab > 0)).astype(np.float32)
    for name, data in (("img", img), ("lab", lab)):
        nii = nib.Nifti1Image(data, np.diag([0.9, 0.9, 8.0, 1.0]))
        nii.header.set_zooms((0.9, 0.9, 8.0, 25.0))
        nib.save(nii, tmp_path / f"{name}.nii.gz")
    pd.DataFrame({"eid": ["s1"], "image": ["img.nii.gz"], "label": ["lab.nii.gz"]}).to_csv(
        tmp_path / "pairs.csv", index=False
    )
    cache = SliceCache.load(
        build_slice_cache(nifti_pair_volumes(tmp_path / "pairs.csv"), tmp_path / "c.npz")
    )
    assert len(cache) == 3  # one labelled frame of 3 slices
    assert set(cache.subject) == {"s1"}
    area_mm2 = (cache.label[0] == LV_CAVITY).sum() * 1.8**2
    assert area_mm2 == pytest.approx(np.pi * 9.0**2, rel=0.1)  # radius 10 px x 0.9 mm
    assert cache.image[0][cache.label[0] == LV_CAVITY].mean() > 200  # bright blood kept
