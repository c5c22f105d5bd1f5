"""Parquet tables carry units, descriptions and provenance; NIfTI helpers keep geometry."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cardiopheno.io.nifti import ImageReadError, load_cine, save_labels_like, save_nifti
from cardiopheno.io.tables import (
    ColumnSpec,
    column_specs,
    config_hash,
    file_metadata,
    read_table,
    write_table,
)


def test_write_table_stores_units_descriptions_and_provenance(tmp_path):
    df = pd.DataFrame({"eid": [1, 2], "LVEDV": [150.0, 120.0], "ED_frame": [0, 3]})
    path = tmp_path / "t.parquet"
    write_table(
        df,
        path,
        {"LVEDV": ColumnSpec("mL", "LV end-diastolic volume")},
        config={"a": 1},
        model_sha256="abc",
    )
    assert column_specs(path)["LVEDV"] == ColumnSpec("mL", "LV end-diastolic volume")
    meta = file_metadata(path)
    assert meta["config_hash"] == config_hash({"a": 1})
    assert meta["model_sha256"] == "abc"
    assert "cardiopheno_version" in meta
    back = read_table(path)
    assert back["eid"].tolist() == ["1", "2"]
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"


def test_undocumented_float_column_is_refused(tmp_path):
    with pytest.raises(ValueError, match="LVESV"):
        write_table(pd.DataFrame({"LVESV": [1.0]}), tmp_path / "t.parquet")
    assert not (tmp_path / "t.parquet").exists()


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": {"c": 2}}) == config_hash({"b": {"c": 2}, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_cine_round_trip_keeps_spacing_and_frame_interval(tmp_path):
    affine = np.diag([1.8, 1.8, 10.0, 1.0])
    data = np.random.default_rng(0).random((8, 9, 3, 5)).astype(np.float32)
    path = tmp_path / "sa.nii.gz"
    save_nifti(path, data, affine, zooms=(1.8, 1.8, 10.0, 32.5))
    cine = load_cine(path)
    assert cine.data.shape == (8, 9, 3, 5)
    assert cine.spacing == pytest.approx((1.8, 1.8, 10.0))
    assert cine.frame_interval_ms == pytest.approx(32.5)
    assert cine.voxel_volume_ml == pytest.approx(1.8 * 1.8 * 10 / 1000)


def test_frame_interval_in_seconds_is_converted(tmp_path):
    img = nib.Nifti1Image(np.zeros((4, 4, 2, 3), np.float32), np.eye(4))
    img.header.set_zooms((1, 1, 1, 0.04))
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, tmp_path / "s.nii.gz")
    assert load_cine(tmp_path / "s.nii.gz").frame_interval_ms == pytest.approx(40.0)


def test_labels_saved_on_the_reference_grid(tmp_path):
    affine = np.array([[0, -1.8, 0, 10], [1.8, 0, 0, -5], [0, 0, 10, 3], [0, 0, 0, 1]])
    save_nifti(tmp_path / "sa.nii.gz", np.ones((6, 7, 2, 4), np.float32), affine)
    labels = np.zeros((6, 7, 2, 4), np.uint8)
    labels[2:4, 2:4] = 1
    save_labels_like(tmp_path / "seg.nii.gz", labels, tmp_path / "sa.nii.gz")
    seg = nib.load(tmp_path / "seg.nii.gz")
    assert seg.get_data_dtype() == np.uint8
    np.testing.assert_allclose(seg.affine, affine)
    np.testing.assert_array_equal(np.asanyarray(seg.dataobj), labels)
    with pytest.raises(ValueError, match="shape"):
        save_labels_like(tmp_path / "bad.nii.gz", labels[..., :2], tmp_path / "sa.nii.gz")


def test_unreadable_image_names_file_and_cause(tmp_path):
    bad = tmp_path / "sa.nii.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(ImageReadError, match="sa.nii.gz: cannot read image"):
        load_cine(bad)


def test_gzip_with_a_bad_crc_is_unreadable_even_when_it_inflates(tmp_path):
    """nibabel stops before the gzip trailer, so corrupt bytes that still inflate would load."""
    path = tmp_path / "sa.nii.gz"
    save_nifti(path, np.ones((8, 8, 2, 3), np.float32), np.eye(4))
    raw = bytearray(path.read_bytes())
    raw[-8] ^= 0xFF  # the CRC32 of the trailer: the stream itself still inflates
    path.write_bytes(bytes(raw))
    np.asanyarray(nib.load(path).dataobj)  # nibabel alone does not notice
    with pytest.raises(ImageReadError, match="CRC"):
        load_cine(path)
