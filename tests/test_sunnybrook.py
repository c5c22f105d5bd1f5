"""Real DICOM (Sunnybrook, ../shared/data): geometry, frame order, expert label maps and volumes."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM
from cardiopheno.io.nifti import load_cine, save_labels_like, save_nifti
from cardiopheno.io.provided import check_provided_segmentation
from cardiopheno.io.sunnybrook import (
    contour_files,
    expert_lv_volumes,
    load_sunnybrook_case,
    polygon_area,
    rasterise_contour,
    read_contour,
)

pytestmark = pytest.mark.shared_data

CASES = {  # DICOM folder: (contour folder, expected shape, ED frame, ES frame) from README
    "SCD0000101": ("SC-HF-I-1", (256, 256, 12, 20), 18, 7),
    "SCD0000201": ("SC-HF-I-2", (256, 256, 13, 20), 19, 6),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, shared_data):
    name = request.param
    root = shared_data / "sunnybrook"
    contour_dir = root / "contours" / CASES[name][0]
    return (
        name,
        root / "dicoms" / name,
        contour_dir,
        load_sunnybrook_case(root / "dicoms" / name, contour_dir),
    )


def test_shape_spacing_and_timing(case):
    name, _, _, (image, labels, labelled) = case
    assert image.data.shape == CASES[name][1]
    assert labels.shape == image.data.shape and labelled.shape == image.data.shape[2:]
    np.testing.assert_allclose(image.spacing, (1.367188, 1.367188, 10.0), atol=1e-3)
    assert 30 < image.frame_interval_ms < 45  # 20 phases over an R-R of 700-800 ms


def test_affine_matches_dicom_geometry(case):
    name, dicom_dir, _, (image, _, _) = case
    case_dcm = {n: dicom_dir / f"{n}.dcm" for n in (1, 20, 21, 221)}
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    n_slices = image.data.shape[2]
    for n, path in case_dcm.items():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        iop = np.array(ds.ImageOrientationPatient, dtype=float)
        ps = np.array(ds.PixelSpacing, dtype=float)
        # README: file n is slice (n-1)//20, phase (n-1)%20 in file order; geometry orders slices
        # along the normal, which for these cases is the reverse of the file order.
        k = n_slices - 1 - (n - 1) // 20
        voxel = (7, 11, k)  # column 7, row 11
        lps = (
            np.array(ds.ImagePositionPatient, dtype=float)
            + 7 * ps[1] * iop[:3]
            + 11 * ps[0] * iop[3:]
        )
        ras = image.affine @ np.array([*voxel, 1.0])
        np.testing.assert_allclose(ras[:3], lps_to_ras @ lps, atol=1e-3)
    np.testing.assert_allclose(image.affine[:3, 0] / 1.367188, lps_to_ras @ iop[:3], atol=1e-5)


def test_slice_and_phase_agree_with_file_numbering(case, shared_data):
    from cardiopheno.io.dicom import read_dicom_cine

    name, dicom_dir, _, (image, _, _) = case
    dcm = read_dicom_cine(dicom_dir)
    n = dcm.instance_numbers
    z, t = n.shape
    readme_slice, readme_phase = (n - 1) // 20, (n - 1) % 20
    np.testing.assert_array_equal(readme_phase, np.broadcast_to(np.arange(t), (z, t)))
    np.testing.assert_array_equal(readme_slice[:, 0], np.arange(z)[::-1])
    assert np.all(np.diff(dcm.trigger_times_ms, axis=1) > 0)
    np.testing.assert_array_equal(dcm.data, image.data)


def test_rasterised_areas_match_shoelace_areas(case):
    _, _, contour_dir, _ = case
    total_polygon = total_pixels = 0.0
    for path in contour_files(contour_dir).values():
        pts = read_contour(path)
        pixels = rasterise_contour(pts, 256, 256).sum()
        area = polygon_area(pts)
        assert abs(pixels - area) / area < 0.02, path.name
        total_polygon, total_pixels = total_polygon + area, total_pixels + pixels
    assert abs(total_pixels - total_polygon) / total_polygon < 0.002


def test_expert_labels_and_volumes(case):
    name, _, contour_dir, sb = case
    image, labels, labelled = sb
    ed, es = CASES[name][2], CASES[name][3]
    assert sorted(np.flatnonzero(labelled.any(axis=0))) == sorted([es, ed])
    ref = expert_lv_volumes(sb)
    assert (ref["ED_frame"], ref["ES_frame"]) == (ed, es)
    assert ref["ED_frame"] > ref["ES_frame"]  # ED is late in these cines, not frame 0
    assert ref["epicardial_contour_frames"] == [ed]
    assert set(np.unique(labels[..., es])) == {0, LV_CAVITY}
    assert set(np.unique(labels[..., ed])) == {0, LV_CAVITY, LV_MYOCARDIUM}
    # Independent check: shoelace areas of the i-contours x pixel area x slice spacing.
    pixel_ml = image.spacing[0] * image.spacing[1] * image.spacing[2] / 1000.0
    shoelace = {ed: 0.0, es: 0.0}
    for (instance, kind), path in contour_files(contour_dir).items():
        if kind == "i":
            shoelace[ed if (instance - 1) % 20 == ed else es] += (
                polygon_area(read_contour(path)) * pixel_ml
            )
    assert ref["LVEDV"] == pytest.approx(shoelace[ed], rel=0.005)
    assert ref["LVESV"] == pytest.approx(shoelace[es], rel=0.005)
    assert 10 < ref["LVEF"] < 40  # heart failure with infarction


def test_expert_label_map_is_a_valid_provided_segmentation(case, tmp_path):
    _, _, _, (image, labels, _) = case
    sa, seg = tmp_path / "sa.nii.gz", tmp_path / "seg_sa.nii.gz"
    save_nifti(sa, image.data, image.affine, zooms=(*image.spacing, image.frame_interval_ms))
    save_labels_like(seg, labels, sa)
    assert check_provided_segmentation(sa, seg) == ""
    assert load_cine(sa).frame_interval_ms == pytest.approx(image.frame_interval_ms, rel=1e-5)


def test_model_vs_expert_on_the_expert_labels_and_an_eroded_copy(case):
    from scipy.ndimage import binary_erosion

    from cardiopheno.io.sunnybrook import model_vs_expert

    _, _, _, sb = case
    same = model_vs_expert(sb, sb.labels)
    assert same["LVEDV_diff_ml"] == 0 and same["dice_lv_cavity_ED"] == 1.0
    assert same["model_ED_frame"] == expert_lv_volumes(sb)["ED_frame"]
    cavity = sb.labels == LV_CAVITY
    eroded = np.where(binary_erosion(cavity, structure=np.ones((3, 3, 1, 1), bool)), LV_CAVITY, 0)
    smaller = model_vs_expert(sb, eroded.astype(np.uint8))
    lost = (cavity & (eroded == 0))[
        ..., expert_lv_volumes(sb)["ED_frame"]
    ].sum() * sb.image.voxel_volume_ml
    assert smaller["LVEDV_diff_ml"] == pytest.approx(-lost)
    assert 0.5 < smaller["dice_lv_cavity_ED"] < 1.0
