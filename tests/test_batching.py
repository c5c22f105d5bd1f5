"""The batch plan only grows: subjects keep their batch, new subjects fill new batches."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from cardiopheno.batching import (
    BatchPlanError,
    batch_eids,
    batch_name,
    batch_number,
    extend_plan,
    materialise,
    n_batches_for,
    planned_batches,
    read_index,
    read_plan,
    split_manifest,
    write_if_changed,
)


def manifest(eids) -> pd.DataFrame:
    eids = list(eids)
    return pd.DataFrame(
        {"eid": [str(e) for e in eids], "sa": [f"/data/{e}/sa.nii.gz" for e in eids]}
    )


def mtimes(folder) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_batch_count_and_names():
    assert n_batches_for(100, 25) == 4
    assert n_batches_for(101, 25) == 5
    assert n_batches_for(0, 25) == 1
    assert batch_name(3) == "b0003"
    assert batch_number("b0003") == 3
    assert planned_batches(51, 25) == ["b0000", "b0001", "b0002"]
    with pytest.raises(BatchPlanError, match="'x12'"):
        batch_number("x12")


def test_fresh_plan_fills_batches_in_eid_order_regardless_of_row_order():
    eids = [str(1000 + i) for i in range(10)]
    plan = extend_plan(None, reversed(eids), batch_size=4)
    assert plan["eid"].tolist() == eids
    assert plan["batch"].tolist() == ["b0000"] * 4 + ["b0001"] * 4 + ["b0002"] * 2


def test_existing_subjects_keep_their_batch_and_new_ones_fill_new_batches():
    old = extend_plan(None, [str(i) for i in range(100, 110)], batch_size=4)  # b0000..b0002
    grown = extend_plan(old, [str(i) for i in range(100, 115)] + ["099"], batch_size=4)
    pd.testing.assert_frame_equal(grown.iloc[: len(old)], old)
    new = grown.iloc[len(old) :]
    assert new["eid"].tolist() == ["099", "110", "111", "112", "113", "114"]
    assert new["batch"].tolist() == ["b0003"] * 4 + ["b0004"] * 2


def test_plan_with_no_new_subjects_is_unchanged():
    old = extend_plan(None, ["a", "b", "c"], batch_size=2)
    pd.testing.assert_frame_equal(extend_plan(old, ["c", "a"], batch_size=2), old)


def test_materialise_rewrites_only_batches_whose_subjects_changed(tmp_path):
    out = tmp_path / "batches"
    assert materialise(manifest(range(1000, 1010)), out, batch_size=4) == [
        "b0000",
        "b0001",
        "b0002",
    ]
    before = mtimes(out)
    # Re-running with the same cohort (any row order) touches nothing.
    assert materialise(manifest(reversed(range(1000, 1010))), out, batch_size=4) == [
        "b0000",
        "b0001",
        "b0002",
    ]
    assert mtimes(out) == before
    # Five new subjects: two new batches; the old batch manifests keep their modification times.
    batches = materialise(manifest(range(1000, 1015)), out, batch_size=4)
    assert batches == ["b0000", "b0001", "b0002", "b0003", "b0004"]
    after = mtimes(out)
    assert {n for n in before if after[n] != before[n]} == {"plan.csv", "index.csv"}
    assert batch_eids(out / "b0003.csv") == ["1010", "1011", "1012", "1013"]
    assert read_index(out) == batches
    index = pd.read_csv(out / "index.csv")
    assert index["n_subjects"].tolist() == [4, 4, 2, 4, 1]


def test_materialise_writes_the_manifest_rows_of_each_batch(tmp_path):
    m = manifest(range(1000, 1006)).assign(seg_sa=["", "/s/1.nii.gz", "", "", "", ""])
    materialise(m, tmp_path, batch_size=3)
    back = pd.concat(pd.read_csv(tmp_path / f"b000{i}.csv", dtype=str) for i in (0, 1))
    pd.testing.assert_frame_equal(
        back.fillna("").reset_index(drop=True), m.astype(str).reset_index(drop=True)
    )


def test_a_changed_row_or_a_removed_subject_rewrites_only_its_batch(tmp_path):
    materialise(manifest(range(1000, 1009)), tmp_path, batch_size=3)
    before = mtimes(tmp_path)
    m = manifest([e for e in range(1000, 1009) if e != 1004])  # 1004 is in b0001
    m.loc[m["eid"] == "1007", "sa"] = "/elsewhere/1007.nii.gz"  # b0002
    assert materialise(m, tmp_path, batch_size=3) == ["b0000", "b0001", "b0002"]
    after = mtimes(tmp_path)
    assert {n for n in before if after[n] != before[n]} == {"b0001.csv", "b0002.csv", "index.csv"}
    # The plan remembers 1004: back in the cohort, it returns to b0001.
    assert read_plan(tmp_path / "plan.csv").set_index("eid").at["1004", "batch"] == "b0001"


def test_a_batch_left_without_subjects_is_dropped(tmp_path):
    materialise(manifest(range(6)), tmp_path, batch_size=2)
    assert materialise(manifest([0, 1, 4, 5]), tmp_path, batch_size=2) == ["b0000", "b0002"]
    assert not (tmp_path / "b0001.csv").exists()


def test_write_if_changed_keeps_an_identical_file_untouched(tmp_path):
    path = tmp_path / "x.csv"
    assert write_if_changed("a\n", path)
    stamp = path.stat().st_mtime_ns
    os.utime(path, ns=(stamp - 10**9, stamp - 10**9))
    assert not write_if_changed("a\n", path)
    assert path.stat().st_mtime_ns == stamp - 10**9
    assert write_if_changed("b\n", path)
    assert path.read_text() == "b\n"


def test_a_corrupt_plan_is_an_error_naming_the_file(tmp_path):
    (tmp_path / "plan.csv").write_text("eid,batch\n1,b0000\n1,b0001\n")
    with pytest.raises(BatchPlanError, match=r"plan\.csv lists eid\(s\) twice: 1"):
        materialise(manifest([1, 2]), tmp_path, batch_size=2)
    (tmp_path / "plan.csv").write_text("eid,batch\n1,first\n")
    with pytest.raises(BatchPlanError, match="'first'"):
        read_plan(tmp_path / "plan.csv")


def test_split_manifest_checks_the_planned_batches(tmp_path):
    for e in range(5):
        (tmp_path / f"{e}.nii.gz").write_bytes(b"x")
    pd.DataFrame({"eid": range(5), "sa": [f"{e}.nii.gz" for e in range(5)]}).to_csv(
        tmp_path / "manifest.csv", index=False
    )
    out = tmp_path / "batches"
    assert split_manifest(tmp_path / "manifest.csv", out, 2, expected=planned_batches(5, 2)) == [
        "b0000",
        "b0001",
        "b0002",
    ]
    assert pd.read_csv(out / "b0002.csv")["sa"].tolist() == [str(tmp_path / "4.nii.gz")]
    with pytest.raises(BatchPlanError, match="makes 3 batch"):
        split_manifest(tmp_path / "manifest.csv", out, 2, expected=planned_batches(4, 2))


def test_cohort_tables_are_sliced_per_batch_and_rewritten_only_where_rows_change(tmp_path):
    cov = pd.DataFrame(
        {"eid": [str(e) for e in range(1000, 1006)], "age": [50, 51, 52, 53, 54, 55]}
    )
    materialise(manifest(range(1000, 1006)), tmp_path, batch_size=3, tables={"covariates": cov})
    parts = [pd.read_csv(tmp_path / f"b000{i}.covariates.csv", dtype={"eid": str}) for i in (0, 1)]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), cov)
    before = mtimes(tmp_path)
    cov.loc[cov["eid"] == "1004", "age"] = 99  # in b0001
    materialise(manifest(range(1000, 1006)), tmp_path, batch_size=3, tables={"covariates": cov})
    after = mtimes(tmp_path)
    assert {n for n in before if after[n] != before[n]} == {"b0001.covariates.csv"}


def test_batch_csv_text_equals_pandas_per_batch_even_with_quotes_and_line_breaks():
    from cardiopheno.batching import _csv_by_batch

    df = pd.DataFrame(
        {"eid": ["1", "2", "3", "4"], "sa": ["/a,b/1.nii.gz", '/q"uote/2.nii.gz', "/3", "/4"]}
    )
    labels = ["b0001", "b0000", "b0001", "b0000"]
    expected = {b: df[[lab == b for lab in labels]].to_csv(index=False) for b in ("b0000", "b0001")}
    assert _csv_by_batch(df, labels, ["b0000", "b0001", "b0002"]) == {
        **expected,
        "b0002": "eid,sa\n",
    }
    broken = df.assign(sa=["/line\nbreak", "/2", "/3", "/4"])  # the slow path
    assert _csv_by_batch(broken, labels, ["b0000", "b0001"])["b0001"] == broken.iloc[[0, 2]].to_csv(
        index=False
    )
