"""Bad inputs on the one-subject commands (issue 35), table-driven: ``cardiopheno segment`` and
``cardiopheno phenotypes`` each given one fault at a time. Every case asserts its exit code, its
error text or its named NaN, that no traceback or object repr reaches the user, and that no
input file changed. (tests/test_hostile_inputs.py covers the workflow's tables and headers.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from cardiopheno.cli import main as cli_main
from cardiopheno.phenotypes._phantom import make_phantom, phantom_image
from cardiopheno.phenotypes.batch import phenotype_rows
from cardiopheno.qc.checks import QCThresholds
from cardiopheno.qc.phenotype import check_phenotypes

CARDIOPHENO = Path(sys.executable).with_name("cardiopheno")
ZOOMS = (1.8, 1.8, 8.0, 30.0)


def _save(path: Path, data: np.ndarray, zooms=ZOOMS) -> Path:
    img = nib.Nifti1Image(data, np.diag([1.8, 1.8, 8.0, 1.0]))
    img.header["pixdim"][1 : 1 + data.ndim] = zooms[: data.ndim]
    img.header.set_xyzt_units("mm", "msec")
    nib.save(img, path)
    return path


def _checksums(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def _phantom(n_frames=8, shape=(48, 48), slices=6):
    return make_phantom(shape_xy=shape, n_slices=slices, n_frames=n_frames,
                        spacing=ZOOMS[:3], r_ed_mm=20, r_es_mm=14).labels  # fmt: skip


def _cine(n_frames=8, slices=6):
    return phantom_image(_phantom(n_frames, slices=slices)).astype(np.float32) * 1000


def _assert_readable(text: str) -> None:
    assert "Traceback" not in text and " object at 0x" not in text, text


# ------------------------------------------------------------------------------- segment
def _with_nan_voxel():
    data = _cine()
    data[3, 3, 1, 2] = np.nan
    return data


def _dot():
    data = np.zeros((48, 48, 6, 8), np.float32)
    data[20:22, 20:22, 3] = 500.0
    return data


# name: (image data maker, header zooms, expected exit code, expected text on stderr)
SEGMENT_CASES = {
    "valid": (_cine, ZOOMS, 0, ""),
    "spacing 500 mm": (_cine, (500, 500, 8, 30), 2, "in-plane spacing 500 mm is outside 0.3-20 mm"),
    "spacing 1e-4 mm": (_cine, (1e-4, 1e-4, 8, 30), 2, "in-plane spacing 0.0001 mm is outside"),
    "slice spacing 0": (_cine, (1.8, 1.8, 0, 30), 2, "slice spacing 0 mm is outside 0.3-50 mm"),
    "NaN spacing": (_cine, (float("nan"), 1.8, 8, 30), 2, "in-plane spacing nan mm"),
    "all-zero cine": (lambda: np.zeros((48, 48, 6, 8), np.float32), ZOOMS, 2, "every voxel is 0"),
    "NaN voxel": (_with_nan_voxel, ZOOMS, 2, "1 voxels are NaN or infinite"),
    "near-blank cine": (_dot, ZOOMS, 0, "warning: " ),
    "2D array": (lambda: _cine()[:, :, 0, 0], ZOOMS, 2, "expected a 3D or 4D image, got 2D"),
    "5D array": (lambda: _cine()[..., None], (*ZOOMS, 1.0), 2, "expected a 3D or 4D image, got 5D"),
    "8 x 8 matrix": (lambda: _cine()[:8, :8], ZOOMS, 2, "in-plane matrix 8 x 8"),
    "1200 frames": (lambda: np.random.default_rng(0).random((20, 20, 1, 1200), np.float32),
                    ZOOMS, 2, "1200 frames; expected at most 1000"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(SEGMENT_CASES))
def test_segment_refuses_or_warns_on_a_bad_cine(case, tmp_path, tiny_checkpoint, capsys):
    make, zooms, code, expected = SEGMENT_CASES[case]
    (tmp_path / "in").mkdir()
    cine = _save(tmp_path / "in" / "sa.nii.gz", make(), zooms)
    before = _checksums(cine.parent)
    out = tmp_path / "out" / "seg.nii.gz"
    rc = cli_main(["segment", "--input", str(cine), "--output", str(out), "--checkpoint",
                   str(tiny_checkpoint), "--device", "cpu", "--no-tta"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == code, err
    assert expected in err
    if code:
        assert "sa.nii.gz" in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()
    else:
        assert out.is_file()
    if case == "valid":
        assert "warning" not in err
    if case == "near-blank cine":
        assert "near-blank image" in err
    _assert_readable(err)
    assert _checksums(cine.parent) == before


@pytest.mark.parametrize("how", ["same path", "same path via ..", "hard link", "symbolic link"])
def test_segment_never_overwrites_its_input(how, tmp_path, tiny_checkpoint, capsys):
    cine = _save(tmp_path / "sa.nii.gz", _cine())
    out = {
        "same path": cine,
        "same path via ..": tmp_path / "sub" / ".." / "sa.nii.gz",
        "hard link": tmp_path / "hard.nii.gz",
        "symbolic link": tmp_path / "soft.nii.gz",
    }[how]
    if how == "hard link":
        os.link(cine, out)
    elif how == "symbolic link":
        out.symlink_to(cine)
    (tmp_path / "sub").mkdir()
    before = _checksums(tmp_path)
    rc = cli_main(["segment", "--input", str(cine), "--output", str(out), "--checkpoint",
                   str(tiny_checkpoint), "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "would be overwritten" in err and "sa.nii.gz" in err, err
    _assert_readable(err)
    assert _checksums(tmp_path) == before


@pytest.mark.parametrize(
    ("output", "expected"),
    [("seg.txt", "expected a file name ending in .nii.gz or .nii"), ("", "is a folder")],
)
def test_segment_refuses_an_output_it_cannot_write(output, expected, tmp_path, tiny_checkpoint,
                                                    capsys):  # fmt: skip
    cine = _save(tmp_path / "sa.nii.gz", _cine(n_frames=2))
    rc = cli_main(["segment", "--input", str(cine), "--output", str(tmp_path / output),
                   "--checkpoint", str(tiny_checkpoint), "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and expected in err, err


def test_segment_warns_when_the_label_map_is_empty(tmp_path, tiny_checkpoint, capsys,
                                                   monkeypatch):  # fmt: skip
    from types import SimpleNamespace

    from cardiopheno.segment.infer import Segmenter

    empty = SimpleNamespace(labels=np.zeros((48, 48, 6, 2), np.uint8), tta={})
    monkeypatch.setattr(Segmenter, "segment_file", lambda self, *a, **k: empty)
    cine = _save(tmp_path / "sa.nii.gz", _cine(n_frames=2))
    rc = cli_main(["segment", "--input", str(cine), "--output", str(tmp_path / "seg.nii.gz"),
                   "--checkpoint", str(tiny_checkpoint), "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0 and "the label map is empty (no sa structure found in" in err, err


@pytest.mark.parametrize(
    ("view", "slices", "expected"),
    [("la_4ch", 6, "6 slices given as la_4ch"), ("sa", 1, "one slice given as sa")],
)
def test_segment_warns_when_the_cine_does_not_look_like_its_view(view, slices, expected, tmp_path,
                                                                capsys):  # fmt: skip
    cine = _save(tmp_path / "cine.nii.gz", _cine(n_frames=2, slices=slices))
    rc = cli_main(["segment", "--input", str(cine), "--output", str(tmp_path / "seg.nii.gz"),
                   "--view", view, "--device", "cpu", "--no-tta"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0 and f"warning: {cine}: {expected}" in err, err


@pytest.mark.slow
def test_segment_errors_reach_the_terminal_as_one_line(tmp_path, tiny_checkpoint):
    """As a user runs it (a separate process): the MONAI failure at 500 mm used to print
    ``applying transform <monai...Spacing object at 0x...>``; now the contract names the spacing."""
    cine = _save(tmp_path / "sa.nii.gz", _cine(n_frames=2), (500, 500, 8, 30))
    before = _checksums(tmp_path)
    res = subprocess.run(
        [str(CARDIOPHENO), "segment", "--input", str(cine), "--output", str(cine),
         "--checkpoint", str(tiny_checkpoint), "--device", "cpu"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 2 and "would be overwritten" in res.stderr
    res = subprocess.run(
        [str(CARDIOPHENO), "segment", "--input", str(cine), "--output",
         str(tmp_path / "seg.nii.gz"), "--checkpoint", str(tiny_checkpoint), "--device", "cpu"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 2
    assert res.stderr.strip() == (
        f"cardiopheno segment: error: {cine}: voxel spacing 500 x 500 x 8 mm: in-plane spacing "
        "500 mm is outside 0.3-20 mm (NIfTI pixdim); is the header's spacing or unit wrong?"
    )
    assert _checksums(tmp_path) == before


# ------------------------------------------------------------------------------- phenotypes
def _one_frame():
    return _phantom(n_frames=1)


def _rv_larger_at_es():
    labels = _phantom()
    es = int(np.argmin((labels == 1).sum(axis=(0, 1, 2))))
    frame = labels[..., es]
    frame[(frame == 0) & (np.arange(48)[:, None, None] > 36)] = 3  # RV grows at ES
    return labels


def _with_label(value, dtype=np.uint8):
    def make():
        labels = _phantom().astype(dtype)
        labels[0, 0, 0, 0] = value
        return labels

    return make


def _still():
    labels = _phantom()
    return np.repeat(labels[..., :1], 8, axis=3)  # every frame the same: no systole


# name: (label map maker, header zooms, extra options, exit code, expected text, NaN values)
PHENOTYPE_CASES = {
    "valid": (_phantom, ZOOMS, [], 0, "", []),
    "one-frame map": (_one_frame, ZOOMS, [], 0,
                      "LVEF 0 % is not above 0 (a one-frame segmentation has no end-systolic frame)",
                      ["LVEF", "LVESV", "LVSV", "ES_frame", "RVEF", "RVSV"]),
    "RV larger at ES": (_rv_larger_at_es, ZOOMS, [], 0, "cannot be right: RVESV",
                        ["RVEF", "RVSV", "RVESV"]),
    "no motion": (_still, ZOOMS, [], 0, "LVEF 0 % is not above 0", ["LVEF", "LVSV"]),
    "height in metres": (_phantom, ZOOMS, ["--height-cm", "1.7", "--weight-kg", "70"], 1,
                         "--height-cm 1.7: height is in cm, expected 40-250; did you give metres "
                         "(170 cm)?", None),
    "height in mm": (_phantom, ZOOMS, ["--height-cm", "1700", "--weight-kg", "70"], 1,
                     "did you give mm (170 cm)?", None),
    "negative weight": (_phantom, ZOOMS, ["--height-cm", "170", "--weight-kg", "-70"], 1,
                        "--weight-kg -70: weight must be positive", None),
    "weight in grams": (_phantom, ZOOMS, ["--weight-kg", "70000"], 1, "did you give grams", None),
    "label 7 in a short-axis map": (_with_label(7), ZOOMS, [], 1,
                                    "label value(s) 7 not in the sa view's labels", None),
    "float labels": (_with_label(1.5, np.float32), ZOOMS, [], 1,
                     "label values are not whole numbers (e.g. 1.5)", None),
    "negative labels": (_with_label(-2, np.int16), ZOOMS, [], 1, "label value(s) -2 not in", None),
    "zero slice spacing": (_phantom, (1.8, 1.8, 0, 30), [], 1, "slice spacing 0 mm", None),
    "spacing 500 mm": (_phantom, (500, 500, 8, 30), [], 1, "in-plane spacing 500 mm", None),
    "height NaN": (_phantom, ZOOMS, ["--height-cm", "nan"], 1, "--height-cm nan: not a number",
                   None),
    "height infinite": (_phantom, ZOOMS, ["--height-cm", "inf"], 1,
                        "--height-cm inf: not a finite number", None),
}  # fmt: skip


def _run_phenotypes(argv, capsys, caplog) -> tuple[int, str, str]:
    caplog.clear()
    with caplog.at_level(logging.INFO):
        rc = cli_main(["phenotypes", *argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err + caplog.text


@pytest.mark.parametrize("case", list(PHENOTYPE_CASES))
def test_phenotypes_refuse_bad_inputs_or_name_their_nan(case, tmp_path, capsys, caplog):
    make, zooms, options, code, expected, nan = PHENOTYPE_CASES[case]
    (tmp_path / "in").mkdir()
    seg = _save(tmp_path / "in" / "seg.nii.gz", make(), zooms)
    before = _checksums(seg.parent)
    out = tmp_path / "out.json"
    rc, _, err = _run_phenotypes(["--seg", str(seg), "--out", str(out), *options], capsys, caplog)
    assert rc == code, err
    _assert_readable(err)
    assert _checksums(seg.parent) == before
    if code:
        assert expected in err and not out.exists()
        return
    doc = json.loads(out.read_text())
    for name in nan:
        assert doc["values"][name] is None, name
    assert all(v is None or math.isfinite(v) for v in doc["values"].values())
    if expected:
        assert any(expected in note for note in doc["notes"]), doc["notes"]
    else:
        assert 0 < doc["values"]["LVEF"] < 100 and 0 < doc["values"]["RVEF"] < 100
        assert not any("cannot be right" in note for note in doc["notes"])


@pytest.mark.parametrize("how", ["same path", "hard link"])
def test_phenotypes_never_overwrite_an_input(how, tmp_path, capsys, caplog):
    seg = _save(tmp_path / "seg.nii.gz", _phantom())
    image = _save(tmp_path / "sa.nii.gz", _cine())
    out = image if how == "same path" else tmp_path / "linked.json"
    if how == "hard link":
        os.link(seg, out)
    before = _checksums(tmp_path)
    rc, _, err = _run_phenotypes(
        ["--seg", str(seg), "--image", str(image), "--out", str(out)], capsys, caplog
    )
    assert rc == 1 and "would be overwritten" in err, err
    assert _checksums(tmp_path) == before


def test_phenotypes_refuse_a_folder_as_output(tmp_path, capsys, caplog):
    seg = _save(tmp_path / "seg.nii.gz", _phantom())
    rc, _, err = _run_phenotypes(["--seg", str(seg), "--out", str(tmp_path)], capsys, caplog)
    assert rc == 1 and f"output {tmp_path} is a folder" in err, err


def test_a_long_axis_map_with_labels_outside_its_view_is_refused(tmp_path, capsys, caplog):
    seg = _save(tmp_path / "seg.nii.gz", _phantom())
    la = _save(tmp_path / "seg_la_2ch.nii.gz", _phantom()[:, :, 2:3])  # labels 1-3; la_2ch: 1
    rc, _, err = _run_phenotypes(["--seg", str(seg), "--view", "la_2ch", str(la)], capsys, caplog)
    assert rc == 1 and "label value(s) 2, 3 not in the la_2ch view's labels" in err, err


def test_workflow_table_names_the_nan_and_qc_gives_the_reason(tmp_path):
    """The same plausibility step runs in the workflow's phenotype stage: a one-frame map gets NaN
    LVEF with the reason in phenotypes_notes, and QC's range check says why it is missing."""
    import pandas as pd

    seg = _save(tmp_path / "seg.nii.gz", _one_frame())
    subjects = pd.DataFrame({"eid": ["1"], "seg_sa": [str(seg)], "ok": [True], "reason": [""]})
    table, _, _ = phenotype_rows(subjects, {}, ["lv_function", "rv_function"])
    row = table.iloc[0]
    assert row["phenotypes_ok"] and math.isnan(row["LVEF"]) and pd.isna(row["ES_frame"])
    assert "LVEF 0 % is not above 0" in row["phenotypes_notes"]
    ranges = check_phenotypes(row.to_dict(), QCThresholds())[0]
    assert not ranges.passed
    assert "LVEF missing (cannot be right: LVEF 0 % is not above 0" in ranges.reason


def test_workflow_segment_table_names_an_implausible_spacing(tmp_path, tiny_checkpoint):
    """The segment stage refuses a 500 mm header in its table's reason, readable (it used to be
    MONAI's 'applying transform <...Spacing object at 0x...>'), and segments the valid subject."""
    import pandas as pd

    from cardiopheno.io.tables import read_table
    from cardiopheno.segment.infer import run_batch

    _save(tmp_path / "good.nii.gz", _cine(n_frames=2))
    _save(tmp_path / "bad.nii.gz", _cine(n_frames=2), (500, 500, 8, 30))
    pd.DataFrame({"eid": ["1", "2"], "sa": ["good.nii.gz", "bad.nii.gz"]}).to_csv(
        tmp_path / "m.csv", index=False
    )
    before = _checksums(tmp_path)
    settings = {"checkpoint": str(tiny_checkpoint), "device": "cpu", "progress": False}
    run_batch(tmp_path / "m.csv", tmp_path / "seg", tmp_path / "b.parquet", settings)
    table = read_table(tmp_path / "b.parquet").set_index("eid")
    assert table.loc["1", "ok"] and not table.loc["2", "ok"]
    reason = table.loc["2", "reason"]
    assert "in-plane spacing 500 mm is outside 0.3-20 mm" in reason and "object at" not in reason
    after = _checksums(tmp_path)
    assert {name: after[name] for name in before} == before
