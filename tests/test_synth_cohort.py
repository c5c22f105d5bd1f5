"""The synthetic cohort on disk: layout, header geometry, truth agreement, determinism, faults."""

from __future__ import annotations

import gzip
import hashlib

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cardiopheno.cli import main
from cardiopheno.io.nifti import ImageReadError, load_cine
from cardiopheno.io.tables import read_table
from cardiopheno.synth import generate_cohort
from cardiopheno.synth.cohort import VOXEL_TOLERANCE
from cardiopheno.synth.faults import FAULT_TYPES, assign_faults
from cardiopheno.synth.montage import write_montage

N = 3


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Seed 0 written by the CLI with 2 workers (no faults)."""
    out = tmp_path_factory.mktemp("cohort")
    assert main(["synth", "--n", str(N), "--seed", "0", "--out", str(out),
                 "--fault-fraction", "0", "--jobs", "2"]) == 0  # fmt: skip
    return out


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """One subject per fault type (fraction 1.0 cycles through all types)."""
    out = tmp_path_factory.mktemp("faulty")
    generate_cohort(out, n_subjects=len(FAULT_TYPES), seed=7, fault_fraction=1.0, n_jobs=2)
    return out


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout_and_tables(cohort):
    manifest = pd.read_csv(cohort / "manifest.csv", dtype={"eid": str})
    # truth labels are not offered as seg_* columns
    assert list(manifest.columns) == ["eid", "sa", "la_2ch", "la_4ch", "ao"]
    for col in ("sa", "la_2ch", "la_4ch", "ao"):
        for rel in manifest[col]:
            assert (cohort / rel).is_file()
    cov = pd.read_csv(cohort / "covariates.csv", dtype={"eid": str})
    assert {"eid", "age", "sex", "height_cm", "weight_kg", "sbp", "dbp", "heart_rate",
            "imaging_date"} <= set(cov.columns)  # fmt: skip
    assert pd.to_datetime(cov["imaging_date"], format="%Y-%m-%d").notna().all()
    assert list(pd.read_csv(cohort / "diagnoses.csv").columns) == ["eid", "icd10", "date"]
    assert list(pd.read_csv(cohort / "deaths.csv").columns) == ["eid", "date", "icd10"]
    for name in ("idps", "effects", "faults", "volume_curves", "population"):
        assert (cohort / "truth" / f"{name}.parquet").is_file()
    assert "Population model" in (cohort / "truth" / "README.md").read_text()
    for eid in manifest["eid"]:
        assert (cohort / "truth" / "labels" / f"{eid}.nii.gz").is_file()
        for view in ("la_2ch", "la_4ch"):
            assert (cohort / "truth" / "labels" / f"{eid}_{view}.nii.gz").is_file()
    assert (cohort / "truth" / "atrial_curves.parquet").is_file()


def test_long_axis_views_share_the_heart_timing_and_world_space(cohort):
    """Single-slice cines with the short axis's frames, ukbb label maps, and an affine that puts
    the 4-chamber plane through the short-axis stack's LV (one heart, several views)."""
    truth = read_table(cohort / "truth" / "idps.parquet").set_index("eid")
    for eid in truth.index:
        sa = nib.load(cohort / "subjects" / eid / "sa.nii.gz")
        sa_lab = nib.load(cohort / "truth" / "labels" / f"{eid}.nii.gz")
        for view, expected in (("la_2ch", {0, 1}), ("la_4ch", {0, 1, 2, 3, 4, 5})):
            img = nib.load(cohort / "subjects" / eid / f"{view}.nii.gz")
            assert img.shape[2] == 1 and img.shape[3] == sa.shape[3]
            assert img.header.get_zooms()[3] == sa.header.get_zooms()[3]
            lab = np.asarray(nib.load(cohort / "truth" / "labels" / f"{eid}_{view}.nii.gz").dataobj)
            assert set(np.unique(lab)) == expected
        # LV cavity centroid at ED in world space: the same point in both views, within a
        # slice spacing (the 4-chamber cut sees only part of the cavity)
        ed = int(truth.at[eid, "ED_frame"])
        sa_lv = np.argwhere(np.asarray(sa_lab.dataobj)[..., ed] == 1).mean(axis=0)
        la = nib.load(cohort / "truth" / "labels" / f"{eid}_la_4ch.nii.gz")
        la_lv = np.argwhere(np.asarray(la.dataobj)[..., 0, 0] == 1).mean(axis=0)
        w_sa = sa_lab.affine @ np.r_[sa_lv, 1.0]
        w_la = la.affine @ np.r_[la_lv, 0.0, 1.0]
        assert np.linalg.norm(w_sa[:3] - w_la[:3]) < 12.0
    atr = read_table(cohort / "truth" / "atrial_curves.parquet")
    for eid, c in atr.groupby("eid"):
        la = c["LA_volume_ml_analytic"].to_numpy()
        assert la.argmin() == 0  # after the atrial kick: ventricular ED, the cine's first frame
        assert la.max() == pytest.approx(truth.at[eid, "LAV_max"])


def test_header_geometry_and_frame_timing(cohort):
    truth = read_table(cohort / "truth" / "idps.parquet").set_index("eid")
    cov = pd.read_csv(cohort / "covariates.csv", dtype={"eid": str}).set_index("eid")
    for eid in truth.index:
        img = nib.load(cohort / "subjects" / eid / "sa.nii.gz")
        nx, ny, nz, nt = img.shape
        px, py, dz, dt = img.header.get_zooms()
        assert nx == ny and 128 <= nx <= 160
        assert 1.7 <= px <= 1.9 and px == py and dz == 10.0
        assert 9 <= nz <= 13 and 25 <= nt <= 50
        assert img.header.get_xyzt_units() == ("mm", "msec")
        assert img.get_data_dtype() == np.int16
        np.testing.assert_allclose(
            np.linalg.norm(img.affine[:3, :3], axis=0), [px, py, dz], rtol=1e-5
        )
        hr_from_header = 60000.0 / (dt * nt)
        assert abs(hr_from_header - cov.at[eid, "heart_rate"]) < 0.01
        labels = nib.load(cohort / "truth" / "labels" / f"{eid}.nii.gz")
        assert labels.shape == img.shape and np.allclose(labels.affine, img.affine)
        assert set(np.unique(np.asarray(labels.dataobj))) == {0, 1, 2, 3}


def test_voxelised_truth_volumes_agree_with_analytic(cohort):
    truth = read_table(cohort / "truth" / "idps.parquet")
    exact = truth["analytic_volumes_exact"].astype(bool)  # hypokinetic hearts are marked
    for name, tol in VOXEL_TOLERANCE.items():
        rel = (truth.loc[exact, name] / truth.loc[exact, f"{name}_analytic"] - 1).abs()
        assert (rel <= tol).all(), (name, rel.max())
    # ...and the labels on disk give the recorded voxel volumes (docs/phenotypes.md definition).
    row = truth.iloc[0]
    lab = load_cine(cohort / "truth" / "labels" / f"{row['eid']}.nii.gz")
    lv = (lab.data[..., int(row["ED_frame"])] == 1).sum() * lab.voxel_volume_ml
    assert abs(lv / row["LVEDV"] - 1) < 1e-9
    # ED really is the largest and ES the smallest LV cavity frame.
    curves = read_table(cohort / "truth" / "volume_curves.parquet")
    for eid, c in curves.groupby("eid"):
        t = truth.set_index("eid").loc[eid]
        assert int(c["LV_cavity_ml_analytic"].to_numpy().argmax()) == t["ED_frame"]
        assert int(c["LV_cavity_ml_analytic"].to_numpy().argmin()) == t["ES_frame"]


def test_same_seed_gives_identical_bytes_regardless_of_jobs(cohort, tmp_path):
    generate_cohort(tmp_path, n_subjects=N, seed=0, fault_fraction=0.0, n_jobs=1)
    for rel in ("manifest.csv", "covariates.csv", "diagnoses.csv", "deaths.csv",
                "subjects/1000002/sa.nii.gz", "truth/labels/1000003.nii.gz"):  # fmt: skip
        assert _sha(cohort / rel) == _sha(tmp_path / rel), rel
    for name in ("idps", "effects", "volume_curves"):
        a = read_table(cohort / "truth" / f"{name}.parquet")
        b = read_table(tmp_path / "truth" / f"{name}.parquet")
        pd.testing.assert_frame_equal(a, b)


def test_different_seed_gives_a_different_cohort(cohort, tmp_path):
    generate_cohort(tmp_path, n_subjects=1, seed=1, fault_fraction=0.0, n_jobs=1)
    assert _sha(cohort / "subjects/1000001/sa.nii.gz") != _sha(
        tmp_path / "subjects/1000001/sa.nii.gz"
    )
    assert _sha(cohort / "covariates.csv") != _sha(tmp_path / "covariates.csv")


def test_fault_assignment_rule():
    assert assign_faults(100, 0, 0.05).__len__() == 5
    assert assign_faults(100, 0, 0.0) == {}
    many = assign_faults(200, 0, 0.05)
    assert len(many) == len(FAULT_TYPES) and set(many.values()) == set(FAULT_TYPES)
    assert set(assign_faults(1000, 3, 0.05).values()) == set(FAULT_TYPES)


def test_every_fault_type_is_produced_recorded_and_looks_like_its_fault(faulty):
    faults = read_table(faulty / "truth" / "faults.parquet").set_index("fault")
    assert set(faults.index) == set(FAULT_TYPES)
    truth = read_table(faulty / "truth" / "idps.parquet").set_index("eid")

    def path(kind):
        return faulty / "subjects" / faults.at[kind, "eid"] / "sa.nii.gz"

    def clean(kind):
        return load_cine(faulty / "truth" / "labels" / f"{faults.at[kind, 'eid']}.nii.gz")

    for kind in ("corrupt_gzip", "truncated_gzip", "unreadable_header"):
        with pytest.raises(ImageReadError):
            load_cine(path(kind))
    with gzip.open(path("unreadable_header")) as fh:
        assert len(fh.read(400)) == 400  # the gzip stream itself is intact
    assert np.isnan(load_cine(path("nan_voxels")).data).any()
    assert not load_cine(path("blank_image")).data.any()
    if "3D" in faults.at["wrong_dimensionality", "detail"]:
        assert nib.load(path("wrong_dimensionality")).ndim == 3
    else:
        with pytest.raises(ImageReadError):
            load_cine(path("wrong_dimensionality"))
    assert load_cine(path("missing_frames")).n_frames == 3
    basal = load_cine(path("missing_basal_slices"))
    assert basal.data.shape[2] < clean("missing_basal_slices").data.shape[2]
    motion = load_cine(path("interslice_motion"))
    assert motion.data.shape == clean("interslice_motion").data.shape
    noisy = load_cine(path("extreme_noise"))
    sigma = truth.at[faults.at["extreme_noise", "eid"], "intensity_scale"]
    background = noisy.data[:8, :8].std()  # air: Rician noise only
    assert background > 0.3 * sigma
    swapped = nib.load(path("swapped_axes"))
    ref = clean("swapped_axes").data.shape
    assert swapped.shape == (ref[0], ref[1], ref[3], ref[2])
    assert not faults["labels_match_image"]["corrupt_gzip"]
    assert faults["labels_match_image"]["nan_voxels"]


def test_montage_is_written(cohort, tmp_path):
    png = tmp_path / "montage.png"
    write_montage(cohort, png, n_subjects=2)
    assert png.stat().st_size > 20000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
