"""Segmentation pre/post-processing, geometry round trips and the ACDC label order."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY
from cardiopheno.segment.data import acdc_patient_ids, acdc_spacing, read_acdc_volume
from cardiopheno.segment.infer import Segmenter
from cardiopheno.segment.network import NetworkConfig, build_network, save_checkpoint
from cardiopheno.segment.transforms import (
    PreprocessConfig,
    SlicePipeline,
    heart_center,
    map_acdc_labels,
    postprocess_frame,
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


@pytest.mark.parametrize("ndim", [3, 4])
def test_segment_file_keeps_shape_and_affine(tmp_path, tiny_checkpoint, ndim, rng):
    shape = (50, 44, 4, 3)[:ndim]
    affine = np.array([[0, -1.4, 0, 10], [1.5, 0, 0, -20], [0, 0, 8.0, 5], [0, 0, 0, 1]])
    img = nib.Nifti1Image(rng.normal(100, 20, shape).astype(np.int16), affine)
    img.header.set_zooms((1.5, 1.4, 8.0, 30.0)[:ndim])
    src = tmp_path / "sa.nii.gz"
    nib.save(img, src)
    seg = Segmenter(tiny_checkpoint, device="cpu", tta=True)
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
