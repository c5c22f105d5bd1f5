"""Eids are one type everywhere: every table reader gives the same text for the same id."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cardiopheno.io.eids import canonical_eids, number_key, zero_padding_groups
from cardiopheno.io.tables import read_any


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (pd.Series([1000001.0, np.nan, 3.0]), ["1000001", "", "3"]),
        (pd.Series([1000001.5]), ["1000001.5"]),  # not a whole number: left for the check
        (
            pd.Series([" 1000001 ", "1000001.0", "12.000", None, "abc"]),
            ["1000001", "1000001", "12", "", "abc"],
        ),  # fmt: skip
        (pd.Series(["0012", "12.50", "1.0e6"]), ["0012", "12.50", "1.0e6"]),
        (pd.Series([1, None], dtype="Int64"), ["1", ""]),
        (pd.Series([1000001, 2], dtype="int64"), ["1000001", "2"]),
    ],
)
def test_canonical_eids(values, expected):
    assert canonical_eids(values).tolist() == expected


def test_a_float_parquet_and_a_text_csv_read_to_the_same_eids(tmp_path):
    """What pandas writes after a join with missing values: eid as float64."""
    pd.DataFrame({"eid": [1000001.0, 1000002.0], "age": [50, 60]}).to_parquet(
        tmp_path / "a.parquet"
    )
    pd.DataFrame({"eid": [" 1000001", "1000002.0"], "age": [50, 60]}).to_csv(
        tmp_path / "b.csv", index=False
    )
    assert read_any(tmp_path / "a.parquet")["eid"].tolist() == ["1000001", "1000002"]
    assert read_any(tmp_path / "b.csv")["eid"].tolist() == ["1000001", "1000002"]


def test_zero_padded_spellings_of_one_number_are_grouped():
    eids = pd.Series(["0001", "1", "001", "2", "abc", "02", "3", "0"])
    assert zero_padding_groups(eids) == [["0001", "001", "1"], ["02", "2"]]
    assert number_key(pd.Series(["000", "0", "a1", "010"])).tolist() == ["0", "0", "", "10"]
