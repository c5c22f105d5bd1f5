"""The input contract (issue 35): covariates, images, label maps and outputs checked against one
set of ranges (cardiopheno/data/input_contract.yaml), as the commands and the workflow use it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cardiopheno.io.contract import (
    InputError,
    check_covariate,
    check_covariates_frame,
    contract,
    covariate_problems,
    image_findings,
    label_problems,
    refuse_overwriting_inputs,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("height_cm", 1.7, "height_cm 1.7: height is in cm, expected 40-250; did you give metres (170 cm)?"),
        ("height_cm", 1700, "height_cm 1700: height is in cm, expected 40-250; did you give mm (170 cm)?"),
        ("weight_kg", -70, "weight_kg -70: weight must be positive (weight is in kg, expected 2-400)"),
        ("weight_kg", 70000, "did you give grams (70 kg)?"),
        ("age", 400, "age 400: age at imaging is in years, expected 0-120; did you give months (33.33 years)?"),
        ("age", -3, "age -3: age at imaging is in years, expected 0-120"),
        ("central_pp", 4.5, "did you give kPa (33.75 mmHg)?"),
        ("sbp", float("inf"), "sbp inf: not a finite number"),
        ("height_cm", "tall", "height_cm 'tall': not a number (height in cm)"),
    ],
)  # fmt: skip
def test_implausible_covariate_names_the_unit_probably_meant(name, value, expected):
    assert expected in check_covariate(name, value)


@pytest.mark.parametrize(
    ("name", "value"),
    [("height_cm", 170), ("weight_kg", 70.5), ("age", 0), ("age", 120), ("central_pp", 45),
     ("height_cm", None), ("height_cm", float("nan")), ("height_cm", ""), ("unknown", -1)],
)  # fmt: skip
def test_plausible_or_missing_covariates_pass(name, value):
    assert check_covariate(name, value) == ""


def test_covariates_frame_names_file_eid_line_column_value_and_expected():
    table = pd.DataFrame(
        {
            "eid": ["1", "2", "3", "4"],
            "height_cm": [170, 1.72, None, 1700],
            "weight_kg": [70, 80, -70, "x"],  # text is the covariates table check's business
            "age": [50, 60, 400, 70],
        }
    )
    problems = check_covariates_frame(table, "cohort/cov.csv")
    assert problems == [
        "cohort/cov.csv: eid 2 (line 3): height_cm 1.72: height is in cm, expected 40-250; "
        "did you give metres (172 cm)?",
        "cohort/cov.csv: eid 4 (line 5): height_cm 1700: height is in cm, expected 40-250; "
        "did you give mm (170 cm)?",
        "cohort/cov.csv: eid 3 (line 4): weight_kg -70: weight must be positive (weight is in "
        "kg, expected 2-400)",
        "cohort/cov.csv: eid 3 (line 4): age 400: age at imaging is in years, expected 0-120; "
        "did you give months (33.33 years)?",
    ]
    rows = covariate_problems(table)
    assert rows[["eid", "column"]].values.tolist() == [
        ["2", "height_cm"], ["4", "height_cm"], ["3", "weight_kg"], ["3", "age"]
    ]  # fmt: skip
    assert check_covariates_frame(table.iloc[:1], "c.csv") == []


def test_qc_defaults_lie_inside_the_contract():
    """The contract's hard limits are wider than the QC schema's soft ranges (defined beside)."""
    qc = yaml.safe_load((ROOT / "workflow/schemas/config.qc.schema.yaml").read_text())
    image = {k: v["default"] for k, v in qc["properties"]["image"]["properties"].items()}
    limits = contract()["image"]
    for key in ("in_plane_spacing_mm", "slice_spacing_mm", "frames"):
        lo, hi = limits[key]
        assert lo <= image[key][0] and image[key][1] <= hi, key
    assert limits["min_in_plane"] <= image["min_in_plane"]


# ------------------------------------------------------------------------------- images
def _image(rng, shape=(48, 48, 6, 10)):
    return rng.normal(100, 20, shape).astype(np.float32)


@pytest.mark.parametrize(
    ("spacing", "expected"),
    [
        ((500.0, 500.0, 8.0), "in-plane spacing 500 mm is outside 0.3-20 mm"),
        ((1e-4, 1e-4, 8.0), "in-plane spacing 0.0001 mm is outside"),
        ((1.8, 1.8, 0.0), "slice spacing 0 mm is outside 0.3-50 mm"),
        ((float("nan"), 1.8, 8.0), "in-plane spacing nan mm"),
    ],
)
def test_spacing_outside_the_contract_is_an_error_naming_it(rng, spacing, expected):
    found = image_findings(_image(rng), spacing, "sa.nii.gz", "sa")
    assert any(expected in e and e.startswith("sa.nii.gz: voxel spacing") for e in found.errors)
    with pytest.raises(InputError, match="sa.nii.gz"):
        found.raise_errors()


def test_constant_nonfinite_and_near_blank_images(rng):
    zeros = np.zeros((48, 48, 6, 10), np.float32)
    assert "every voxel is 0" in image_findings(zeros, (1.8, 1.8, 8), "z.nii").errors[0]
    bad = _image(rng)
    bad[0, 0, 0, 0] = np.inf
    assert "1 voxels are NaN or infinite" in image_findings(bad, (1.8, 1.8, 8), "i.nii").errors[0]
    dot = np.zeros((48, 48, 6, 10), np.float32)
    dot[20:22, 20:22, 3] = 100.0
    found = image_findings(dot, (1.8, 1.8, 8), "d.nii", "sa")
    assert found.errors == [] and "near-blank image" in found.warnings[0]
    ok = image_findings(_image(rng), (1.8, 1.8, 8), "ok.nii", "sa")
    assert ok.errors == [] and ok.warnings == []


def test_a_cine_unlike_its_view_is_a_warning(rng):
    single = _image(rng, (64, 64, 1, 10))
    assert "one slice given as sa" in image_findings(single, (1.8, 1.8, 8), "a", "sa").warnings[0]
    stack = _image(rng, (64, 64, 8, 10))
    found = image_findings(stack, (1.8, 1.8, 8), "b", "la_4ch")
    assert "8 slices given as la_4ch" in found.warnings[0] and "--view sa" in found.warnings[0]


# ------------------------------------------------------------------------------- label maps
@pytest.mark.parametrize(
    ("values", "view", "expected"),
    [
        (np.array([0, 1, 2, 7], np.uint8), "sa", "label value(s) 7 not in the sa view's labels"),
        (np.array([0, 1.5, 2, 3], np.float32), "sa", "1 label values are not whole numbers (e.g. 1.5)"),
        (np.array([0, -1, 2, 3], np.int16), "sa", "label value(s) -1 not in"),
        (np.array([0, 1, 5], np.uint8), "la_2ch", "label value(s) 5 not in the la_2ch view's labels (0 background, 1 LA)"),
        (np.array([0, np.nan, 1], np.float32), "sa", "1 label values are NaN or infinite"),
    ],
)  # fmt: skip
def test_label_maps_outside_their_view_are_named(values, view, expected):
    problems = label_problems(values, "seg.nii.gz", view)
    assert any(expected in p for p in problems), problems


def test_valid_label_maps_pass():
    assert label_problems(np.array([0, 1, 2, 3], np.uint8), "s", "sa") == []
    assert label_problems(np.array([0.0, 1.0, 5.0]), "s", "la_4ch") == []


# ------------------------------------------------------------------------------- outputs
def test_an_output_that_is_an_input_is_refused(tmp_path):
    src = tmp_path / "sa.nii.gz"
    src.write_bytes(b"image")
    with pytest.raises(InputError, match="would be overwritten"):
        refuse_overwriting_inputs([tmp_path / "x" / ".." / "sa.nii.gz"], [src])
    os.link(src, tmp_path / "hard.nii.gz")
    with pytest.raises(InputError, match="is the same file as the input"):
        refuse_overwriting_inputs([tmp_path / "hard.nii.gz"], [src])
    (tmp_path / "soft.nii.gz").symlink_to(src)
    with pytest.raises(InputError):
        refuse_overwriting_inputs([tmp_path / "soft.nii.gz"], [src, None])
    refuse_overwriting_inputs([tmp_path / "new.nii.gz", None], [src])  # a new file is fine
