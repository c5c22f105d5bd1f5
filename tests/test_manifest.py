"""The manifest check reports every problem at once, naming eids, columns and files."""

from __future__ import annotations

import pandas as pd
import pytest

from cardiopheno.io.manifest import ManifestError, load_manifest


@pytest.fixture
def cohort(tmp_path):
    for eid in ("1", "2", "3"):
        (tmp_path / eid).mkdir()
        (tmp_path / eid / "sa.nii.gz").write_bytes(b"x")
    return tmp_path


def write(path, rows, columns=("eid", "sa")):
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return path


def test_valid_manifest_resolves_paths_relative_to_itself(cohort):
    m = write(cohort / "manifest.csv", [("1", "1/sa.nii.gz"), ("2", "2/sa.nii.gz")])
    df = load_manifest(m)
    assert df["eid"].tolist() == ["1", "2"]
    assert df.loc[0, "sa"] == str((cohort / "1" / "sa.nii.gz").resolve())


def test_eids_stay_strings_with_leading_zeros(cohort):
    (cohort / "007").mkdir()
    (cohort / "007" / "sa.nii.gz").write_bytes(b"x")
    df = load_manifest(write(cohort / "m.csv", [("007", "007/sa.nii.gz")]))
    assert df["eid"].tolist() == ["007"]


def test_all_problems_listed_in_one_error(cohort):
    rows = [
        ("1", "1/sa.nii.gz", "x"),
        ("1", "2/sa.nii.gz", "y"),
        ("", "3/sa.nii.gz", "z"),
        ("4", "4/missing.nii.gz", "w"),
    ]
    m = write(cohort / "m.csv", rows, columns=("eid", "sa", "scanner"))
    with pytest.raises(ManifestError) as err:
        load_manifest(m)
    text = str(err.value)
    assert len(err.value.problems) == 4
    assert "unknown column(s): scanner" in text
    assert "duplicate eid(s): 1" in text
    assert "empty eid on line(s) 4" in text
    assert "sa: file(s) not found for 4" in text


def test_missing_required_column_is_named(cohort):
    m = write(cohort / "m.csv", [("1",)], columns=("eid",))
    with pytest.raises(ManifestError, match="missing required column"):
        load_manifest(m)


def test_missing_optional_segmentation_is_reported(cohort):
    m = write(cohort / "m.csv", [("1", "1/sa.nii.gz", "1/seg.nii.gz")], ("eid", "sa", "seg_sa"))
    with pytest.raises(ManifestError, match="seg_sa: file"):
        load_manifest(m)


def test_parquet_manifest_is_read(cohort):
    m = cohort / "m.parquet"
    pd.DataFrame({"eid": ["1"], "sa": ["1/sa.nii.gz"]}).to_parquet(m)
    assert load_manifest(m)["eid"].tolist() == ["1"]


def test_absent_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(ManifestError, match="file not found"):
        load_manifest(tmp_path / "nope.csv")


def test_a_row_given_twice_is_dropped_with_a_warning_and_conflicting_rows_named(cohort, caplog):
    rows = [("1", "1/sa.nii.gz"), ("2", "2/sa.nii.gz"), ("1", "1/sa.nii.gz")]
    df = load_manifest(write(cohort / "m.csv", rows))
    assert df["eid"].tolist() == ["1", "2"]
    assert df.attrs["warnings"] == ["1 exact duplicate row(s) dropped (line(s) 4)"]
    assert "exact duplicate" in caplog.text
    with pytest.raises(ManifestError, match=r"duplicate eid\(s\): 2 \(lines 3 and 4, different"):
        load_manifest(write(cohort / "m2.csv", [*rows[:2], ("2", "1/sa.nii.gz")]))
