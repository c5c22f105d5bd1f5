"""DICOM -> 4D NIfTI on series generated with pydicom: geometry, ordering, quirks, zips, privacy."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import logging
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pydicom.config
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGLosslessSV1,
    MRImageStorage,
    RLELossless,
    generate_uid,
)
from scipy.spatial.transform import Rotation

from cardiopheno.io import cli as io_cli
from cardiopheno.io.dicom import (
    DicomConversionError,
    DicomOptions,
    convert_dicom,
    read_dicom_cine,
)
from cardiopheno.io.dicom_batch import convert_batch
from cardiopheno.io.dicom_source import read_zip_manifest
from cardiopheno.io.nifti import load_cine

ROWS, COLS = 12, 16  # different on purpose: a transposed image cannot pass
N_SLICES, N_FRAMES = 4, 5
PIXEL_SPACING = (1.25, 1.5)  # (row step, column step) as DICOM stores PixelSpacing
SLICE_SPACING = 8.0
FRAME_MS = 30.0
ORIENTATION = Rotation.from_euler("zyx", [25, -35, 60], degrees=True).as_matrix()  # oblique
ORIGIN_LPS = np.array([-40.0, 12.5, 63.0])

FAKE_IDENTITY = {
    "PatientName": "Zyxwvutsrq^Qponmlkj",
    "PatientID": "PID987654321",
    "PatientBirthDate": "19230517",
    "AccessionNumber": "ACC55501234",
    "InstitutionName": "Hospital Of Xanadu Qwerty",
    "ReferringPhysicianName": "Doctor^Mnbvcxzlk",
}
FAKE_VALUES = ["Zyxwvutsrq", "Qponmlkj", "PID987654321", "19230517", "ACC55501234", "Xanadu"]


@contextlib.contextmanager
def lax_writing():
    """pydicom refuses invalid values on write by default; real exports contain them."""
    settings = pydicom.config.settings
    old = settings.writing_validation_mode, settings.reading_validation_mode
    settings.writing_validation_mode = settings.reading_validation_mode = pydicom.config.IGNORE
    try:
        yield
    finally:
        settings.writing_validation_mode, settings.reading_validation_mode = old


def expected_pixels(k: int, t: int, offset: int = 0) -> np.ndarray:
    """Rows x columns values that encode slice, frame, row and column."""
    r, c = np.mgrid[0:ROWS, 0:COLS]
    return (offset + 10000 * k + 1000 * t + 16 * r + c).astype(np.uint16)


def make_image(
    k: int,
    t: int,
    *,
    series_uid: str,
    series_number: int = 7,
    description: str = "cine_sax",
    orientation: np.ndarray = ORIENTATION,
    origin: np.ndarray = ORIGIN_LPS,
    trigger: bool = True,
    slice_location: bool = True,
    nominal_interval: bool = True,
    instance: int | None = None,
    offset: int = 0,
    transfer_syntax=ExplicitVRLittleEndian,
    slice_spacing: float = SLICE_SPACING,
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    for key, value in FAKE_IDENTITY.items():
        setattr(ds, key, value)
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.InstanceNumber = instance if instance is not None else k * N_FRAMES + t + 1
    normal = orientation[:, 2]
    position = origin + k * slice_spacing * normal
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*orientation[:, 0], *orientation[:, 1])]
    ds.PixelSpacing = list(PIXEL_SPACING)
    ds.SliceThickness = 6.0  # thinner than the spacing: a gap the converter must not use
    if slice_location:
        ds.SliceLocation = float(position @ normal)
    if trigger:
        ds.TriggerTime = 12.0 + k * 0.5 + t * FRAME_MS
    if nominal_interval:
        ds.NominalInterval = 800
        ds.CardiacNumberOfImages = N_FRAMES
    ds.Rows, ds.Columns = ROWS, COLS
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    pixels = expected_pixels(k, t, offset)
    ds.PixelData = pixels.tobytes()
    if transfer_syntax == RLELossless:
        ds.compress(RLELossless, pixels)
    elif transfer_syntax == JPEGLosslessSV1:
        ds.PixelData = encapsulate([b"\xff\xd8\xff\xc3" + bytes(64) + b"\xff\xd9"])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    return ds


def write_series(
    folder: Path,
    rng: np.random.Generator,
    n_slices: int = N_SLICES,
    skip_slice: int | None = None,
    name_prefix: str = "",
    **kwargs,
) -> list[Path]:
    """Write one series with shuffled, meaningless file names; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    kwargs.setdefault("series_uid", generate_uid())
    cells = [(k, t) for k in range(n_slices) for t in range(N_FRAMES) if k != skip_slice]
    names = rng.permutation(len(cells))
    paths = []
    with lax_writing():
        for (k, t), n in zip(cells, names, strict=True):
            path = folder / f"{name_prefix}{n:04d}_{rng.integers(1 << 30):x}.dcm"
            make_image(k, t, **kwargs).save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


def test_geometry_voxel_centres_match_image_position_patient(tmp_path, rng):
    write_series(tmp_path / "dcm", rng)
    out = tmp_path / "sa.nii.gz"
    convert_dicom(tmp_path / "dcm", out)
    img = nib.load(out)
    assert img.shape == (COLS, ROWS, N_SLICES, N_FRAMES)
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    row_cos, col_cos, normal = ORIENTATION[:, 0], ORIENTATION[:, 1], ORIENTATION[:, 2]
    for k in range(N_SLICES):
        ipp = ORIGIN_LPS + k * SLICE_SPACING * normal
        for i, j in [(0, 0), (COLS - 1, 0), (0, ROWS - 1), (5, 7)]:
            # PS3.3 C.7.6.2.1.1: column index i steps along the row cosines by PixelSpacing[1]
            lps = ipp + i * PIXEL_SPACING[1] * row_cos + j * PIXEL_SPACING[0] * col_cos
            ras = nib.affines.apply_affine(img.affine, [i, j, k])
            np.testing.assert_allclose(ras, lps_to_ras @ lps, atol=1e-3)
    zooms = img.header.get_zooms()
    np.testing.assert_allclose(
        zooms[:3], (PIXEL_SPACING[1], PIXEL_SPACING[0], SLICE_SPACING), atol=1e-4
    )
    np.testing.assert_allclose(zooms[3], FRAME_MS, atol=1e-6)
    assert img.header.get_xyzt_units() == ("mm", "msec")
    assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1
    np.testing.assert_allclose(img.get_qform(), img.affine, atol=1e-4)  # orthonormal: qform exact


def test_shuffled_files_are_sorted_by_position_and_trigger_time(tmp_path, rng):
    write_series(tmp_path / "dcm", rng)
    cine = read_dicom_cine(tmp_path / "dcm")
    for k in range(N_SLICES):
        for t in range(N_FRAMES):
            np.testing.assert_array_equal(cine.data[:, :, k, t], expected_pixels(k, t).T)
    assert cine.frame_interval_source == "trigger_time"
    loaded = load_cine_roundtrip(tmp_path, cine)
    assert loaded.frame_interval_ms == pytest.approx(FRAME_MS)


def load_cine_roundtrip(tmp_path, cine):
    from cardiopheno.io.nifti import save_nifti

    path = tmp_path / "rt.nii.gz"
    save_nifti(path, cine.data, cine.affine, zooms=(*cine.spacing, cine.frame_interval_ms or 0.0))
    return load_cine(path)


def test_reversed_slice_order_gives_the_same_world_geometry(tmp_path, rng):
    # Slices written along -normal: the converter must still order them along +normal.
    write_series(tmp_path / "dcm", rng, slice_spacing=-SLICE_SPACING)
    cine = read_dicom_cine(tmp_path / "dcm")
    np.testing.assert_array_equal(cine.data[:, :, 0, 0], expected_pixels(N_SLICES - 1, 0).T)
    for k in range(N_SLICES):
        src_k = N_SLICES - 1 - k
        ipp = ORIGIN_LPS - src_k * SLICE_SPACING * ORIENTATION[:, 2]
        ras = cine.affine @ np.array([0, 0, k, 1.0])
        np.testing.assert_allclose(ras[:3], np.diag([-1, -1, 1]) @ ipp, atol=1e-3)


def test_missing_trigger_time_uses_nominal_interval_and_instance_order(tmp_path, rng):
    write_series(tmp_path / "dcm", rng, trigger=False, slice_location=False)
    cine = read_dicom_cine(tmp_path / "dcm")
    assert cine.frame_interval_source == "nominal_interval"
    assert cine.frame_interval_ms == pytest.approx(800 / N_FRAMES)
    np.testing.assert_array_equal(cine.data[:, :, 2, 3], expected_pixels(2, 3).T)


def test_missing_timing_leaves_frame_interval_unknown(tmp_path, rng):
    write_series(tmp_path / "dcm", rng, trigger=False, nominal_interval=False)
    out = tmp_path / "sa.nii.gz"
    cine = convert_dicom(tmp_path / "dcm", out)
    assert cine.frame_interval_source == "unknown"
    assert load_cine(out).frame_interval_ms is None


def test_invalid_ui_values_are_tolerated(tmp_path, rng):
    # Leading zeros in a component and a trailing space are invalid UI values seen in real data.
    write_series(tmp_path / "dcm", rng, series_uid="1.2.840.0113.08975550791105350405 ")
    cine = read_dicom_cine(tmp_path / "dcm")
    assert cine.data.shape == (COLS, ROWS, N_SLICES, N_FRAMES)


def test_rle_compressed_pixel_data_is_decoded(tmp_path, rng):
    write_series(tmp_path / "dcm", rng, transfer_syntax=RLELossless)
    cine = read_dicom_cine(tmp_path / "dcm")
    np.testing.assert_array_equal(cine.data[:, :, 3, 4], expected_pixels(3, 4).T)


def test_undecodable_transfer_syntax_is_named_in_the_error(tmp_path, rng):
    write_series(tmp_path / "dcm", rng, transfer_syntax=JPEGLosslessSV1)
    with pytest.raises(DicomConversionError, match="JPEG Lossless") as info:
        read_dicom_cine(tmp_path / "dcm")
    assert "pylibjpeg" in str(info.value)


def test_missing_slice_is_an_error_naming_the_spacing(tmp_path, rng):
    write_series(tmp_path / "dcm", rng, n_slices=5, skip_slice=2)
    with pytest.raises(DicomConversionError, match="uneven slice spacing"):
        read_dicom_cine(tmp_path / "dcm", label="1234567")


def test_missing_geometry_tag_is_an_error(tmp_path, rng):
    paths = write_series(tmp_path / "dcm", rng)
    ds = pydicom.dcmread(paths[3])
    del ds.ImagePositionPatient
    ds.save_as(paths[3])
    with pytest.raises(DicomConversionError, match="missing ImagePositionPatient"):
        read_dicom_cine(tmp_path / "dcm")


UKB_MANIFEST_HEADER = (
    "filename,patientid,studyid,aetitle,date,time,seriesid,series discription,"
    "seriesnumber,instancenumber"
)


def make_ukb_zip(tmp_path: Path, rng, eid: str = "1000001") -> Path:
    """A zip laid out like UK Biobank field 20209: one SAX series per slice, a repeated slice,
    a derived InlineVF series, a long-axis series, and manifest.cvs with an unquoted date comma."""
    staging = tmp_path / f"{eid}_stage"
    rows = []
    study_uid = generate_uid()

    def add(paths, description, series_uid):
        for p in paths:
            rows.append(
                f"{p.name},{FAKE_IDENTITY['PatientID']},{study_uid},CMR,"
                f"Aug 30, 2015,101010,{series_uid},{description},1,1"
            )

    for k in range(N_SLICES):
        uid = generate_uid()
        desc = f"CINE_segmented_SAX_b{k + 1}"
        paths = []
        for t in range(N_FRAMES):
            ds = make_image(
                k, t, series_uid=uid, series_number=10 + k, description=desc, instance=t + 1
            )
            path = staging / f"{rng.integers(1 << 40):x}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            with lax_writing():
                ds.save_as(path, enforce_file_format=True)
            paths.append(path)
        add(paths, desc, uid)
    # Slice 2 acquired again later (higher series number, different pixels): that one is kept.
    uid = generate_uid()
    paths = []
    for t in range(N_FRAMES):
        ds = make_image(
            2,
            t,
            series_uid=uid,
            series_number=30,
            description="CINE_segmented_SAX_b3",
            instance=t + 1,
            offset=7,
        )
        path = staging / f"{rng.integers(1 << 40):x}.dcm"
        with lax_writing():
            ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    add(paths, "CINE_segmented_SAX_b3", uid)
    # Derived and long-axis series in the same zip: never part of the short-axis stack.
    lax = Rotation.from_euler("x", 80, degrees=True).as_matrix()
    uid_vf, uid_lax = generate_uid(), generate_uid()
    add(
        write_series(
            staging, rng, n_slices=1, series_uid=uid_vf, description="CINE_segmented_SAX_InlineVF"
        ),
        "CINE_segmented_SAX_InlineVF",
        uid_vf,
    )
    add(
        write_series(
            staging,
            rng,
            n_slices=1,
            series_uid=uid_lax,
            description="CINE_segmented_LAX_4Ch",
            orientation=lax,
        ),
        "CINE_segmented_LAX_4Ch",
        uid_lax,
    )
    zpath = tmp_path / f"{eid}_20209_2_0.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(staging.iterdir()):
            zf.write(p, p.name)
        zf.writestr("manifest.cvs", "\n".join([UKB_MANIFEST_HEADER, *rows]) + "\n")
    return zpath


def test_ukb_zip_stacks_the_sax_series_and_keeps_the_repeated_slice(tmp_path, rng):
    zpath = make_ukb_zip(tmp_path, rng)
    cine = read_dicom_cine(zpath, label="1000001")
    assert cine.data.shape == (COLS, ROWS, N_SLICES, N_FRAMES)
    np.testing.assert_array_equal(cine.data[:, :, 1, 4], expected_pixels(1, 4).T)
    np.testing.assert_array_equal(cine.data[:, :, 2, 0], expected_pixels(2, 0, offset=7).T)
    assert set(cine.series_descriptions) == {f"CINE_segmented_SAX_b{k}" for k in range(1, 5)}
    np.testing.assert_allclose(cine.spacing[2], SLICE_SPACING, atol=1e-4)


def test_ukb_manifest_with_unquoted_date_comma_is_parsed():
    text = (
        UKB_MANIFEST_HEADER
        + "\n"
        + "a.dcm,X1,S1,CMR,Aug 30, 2015,101010,1.2.3,CINE_segmented_SAX_b1,5,1\n"
    )
    m = read_zip_manifest(text)
    assert m.loc[0, "date"] == "Aug 30, 2015"
    assert m.loc[0, "seriesdescription"] == "CINE_segmented_SAX_b1"
    assert m.loc[0, "filename"] == "a.dcm"


def test_two_series_in_a_folder_choose_the_configured_description(tmp_path, rng):
    write_series(tmp_path / "dcm", rng, description="cine_sax")
    write_series(tmp_path / "dcm", rng, n_slices=2, description="localizer", offset=3)
    (tmp_path / "dcm" / "README.txt").write_text("exported by a PACS\n")  # not DICOM: skipped
    assert read_dicom_cine(tmp_path / "dcm").data.shape[2] == N_SLICES
    options = DicomOptions(series_include=("^nothing$",))
    with pytest.raises(DicomConversionError, match="no short-axis cine.*cine_sax.*localizer"):
        read_dicom_cine(tmp_path / "dcm", options)


def test_batch_records_failures_and_converts_others(tmp_path, rng):
    write_series(tmp_path / "good", rng)
    write_series(tmp_path / "bad", rng, n_slices=5, skip_slice=1)
    nifti = tmp_path / "given.nii.gz"
    nifti.write_bytes(b"")  # passed through untouched: not DICOM
    manifest = pd.DataFrame(
        {
            "eid": ["1", "2", "3"],
            "sa": [str(tmp_path / "good"), str(tmp_path / "bad"), str(nifti)],
            "seg_sa": ["", "", str(tmp_path / "seg.nii.gz")],
        }
    )
    table = convert_batch(manifest, tmp_path / "out")
    assert table["ok"].tolist() == [True, False, True]
    assert table.loc[0, "sa"] == str((tmp_path / "out" / "1" / "sa.nii.gz").resolve())
    assert Path(table.loc[0, "sa"]).is_file()
    assert (
        table.loc[1, "reason"].startswith("2: ")
        and "uneven slice spacing" in table.loc[1, "reason"]
    )
    assert table.loc[2, "source"] == "nifti" and table.loc[2, "seg_sa"].endswith("seg.nii.gz")


def cli_main(argv: list[str]) -> int:
    """The io subcommands alone (the full CLI imports every stage's module)."""
    parser = argparse.ArgumentParser()
    io_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def _all_output_text(folder: Path) -> str:
    chunks = []
    for p in folder.rglob("*"):
        if p.is_file():
            raw = p.read_bytes()
            if p.name.endswith(".gz"):
                raw = gzip.decompress(raw)
            chunks.append(raw.decode("latin-1"))
    return "\n".join(chunks)


def test_no_identifying_value_reaches_outputs_or_logs(tmp_path, rng, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    src = tmp_path / "src"
    write_series(src / "good", rng)
    # A failing subject whose file names carry the patient ID (as some exports name them): the
    # error names the file, and the scrubber must remove the ID from that name.
    paths = write_series(src / "bad", rng, name_prefix=f"{FAKE_IDENTITY['PatientID']}_")
    ds = pydicom.dcmread(paths[0])
    del ds.ImagePositionPatient
    ds.save_as(paths[0])
    zpath = make_ukb_zip(src, rng, eid="1000003")
    out = tmp_path / "out"
    manifest = pd.DataFrame(
        {
            "eid": ["1000001", "1000002", "1000003"],
            "sa": [str(src / "good"), str(src / "bad"), str(zpath)],
        }
    )
    table = convert_batch(manifest, out)
    assert table["ok"].tolist() == [True, False, True]
    table.to_csv(out / "status.csv", index=False)
    rc = cli_main(
        ["convert-dicom", str(src / "good"), "-o", str(out / "cli.nii.gz"), "--eid", "1000001"]
    )
    assert rc == 0
    rc = cli_main(["convert-dicom", str(src / "bad"), "-o", str(out / "cli_bad.nii.gz")])
    assert rc != 0
    captured = capsys.readouterr()
    text = "\n".join([_all_output_text(out), caplog.text, captured.out, captured.err])
    assert "<redacted>" in text and "missing ImagePositionPatient" in text  # failure reported ...
    for value in FAKE_VALUES:  # ... but nothing that identifies the person
        assert value.lower() not in text.lower(), value
    hdr = nib.load(out / "1000001" / "sa.nii.gz").header
    assert hdr["descrip"].item() == b"" and hdr["aux_file"].item() == b""


def test_batch_status_table_is_written_for_the_workflow(tmp_path, rng):
    from cardiopheno.io.dicom_batch import CONVERT_COLUMNS, convert_batch_files
    from cardiopheno.io.tables import file_metadata, read_table

    write_series(tmp_path / "in" / "a", rng)
    manifest = tmp_path / "b0000.csv"
    pd.DataFrame({"eid": ["0042"], "sa": [str(tmp_path / "in" / "a")]}).to_csv(
        manifest, index=False
    )
    convert_batch_files(
        manifest, tmp_path / "b0000", tmp_path / "b0000.parquet", {}, config={"x": 1}
    )
    table = read_table(tmp_path / "b0000.parquet")
    assert table.columns.tolist() == list(CONVERT_COLUMNS)
    assert table.loc[0, "eid"] == "0042" and bool(table.loc[0, "ok"])  # eid stays a string
    assert load_cine(table.loc[0, "sa"]).data.shape == (COLS, ROWS, N_SLICES, N_FRAMES)
    assert file_metadata(tmp_path / "b0000.parquet")["config_hash"]


def test_eid_equal_to_patient_id_is_kept_in_reasons(tmp_path, rng):
    # Some cohorts (Sunnybrook) use the PatientID as the subject key: the eid is never scrubbed.
    paths = write_series(tmp_path / "dcm", rng)
    ds = pydicom.dcmread(paths[0])
    del ds.ImagePositionPatient
    ds.save_as(paths[0])
    eid = FAKE_IDENTITY["PatientID"]
    table = convert_batch(
        pd.DataFrame({"eid": [eid], "sa": [str(tmp_path / "dcm")]}), tmp_path / "o"
    )
    assert (
        table.loc[0, "reason"].startswith(f"{eid}: ")
        and "missing ImagePositionPatient" in table.loc[0, "reason"]
    )


def test_long_axis_and_aortic_dicom_convert_like_the_short_axis(tmp_path, rng):
    """A folder given for a single-slice view is chosen by that view's series names (the short
    axis's default would exclude LAX series) and stacked as X x Y x 1 x frames; a failed view is
    recorded in its own reason column and leaves the short axis alone."""
    write_series(tmp_path / "sa", rng)
    write_series(tmp_path / "four", rng, n_slices=1, description="CINE_segmented_LAX_4Ch")
    write_series(tmp_path / "aorta", rng, n_slices=1, description="CINE_segmented_Ao_dist")
    (tmp_path / "empty").mkdir()
    manifest = pd.DataFrame(
        {
            "eid": ["1", "2"],
            "sa": [str(tmp_path / "sa")] * 2,
            "la_4ch": [str(tmp_path / "four"), str(tmp_path / "empty")],
            "ao": [str(tmp_path / "aorta"), ""],
        }
    )
    table = convert_batch(manifest, tmp_path / "out").set_index("eid")
    assert table["ok"].all()  # the short axis converted for both
    for view in ("la_4ch", "ao"):
        img = nib.load(table.loc["1", view])
        assert img.shape == (COLS, ROWS, 1, N_FRAMES)
        assert table.loc["1", f"{view}_reason"] == ""
    assert table.loc["2", "la_4ch"] == "" and "no DICOM images" in table.loc["2", "la_4ch_reason"]
    assert table.loc["2", "ao"] == "" and table.loc["2", "ao_reason"] == ""  # no view: not an error
