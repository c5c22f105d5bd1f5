"""benchmarks/compare_accuracy.py: pairing by patient, and its statistics against scipy's."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location(
    "compare_accuracy", ROOT / "benchmarks/compare_accuracy.py"
)
compare_accuracy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_accuracy)


def result(rng: np.random.Generator, patients: list[str], shift: dict[str, float]) -> dict:
    rows = []
    for p in patients:
        row = {"patient": p}
        for name in compare_accuracy.PHENOTYPES:
            row[f"err_{name}"] = float(rng.normal(0, 5)) + shift.get(p, 0.0)
        for cls in compare_accuracy.DICE:
            row[f"dice_{cls}"] = float(rng.uniform(0.8, 0.95))
        rows.append(row)
    return {"acdc": {"per_patient": rows}}


def test_pairs_by_patient_and_matches_scipy():
    patients = [f"patient{i:03d}" for i in range(1, 13)]
    base = result(np.random.default_rng(1), patients, {})
    # the same errors grown by 3 on two patients, listed in another order
    new = result(np.random.default_rng(1), patients, {})
    for row in new["acdc"]["per_patient"]:
        if row["patient"] in ("patient003", "patient007"):
            for name in compare_accuracy.PHENOTYPES:
                row[f"err_{name}"] += 3.0 * np.sign(row[f"err_{name}"])
            row["dice_rv"] -= 0.05
    new["acdc"]["per_patient"].reverse()
    out = compare_accuracy.compare(base, new, seed=0)
    lvedv = out["rows"]["LVEDV |error|"]
    assert lvedv["difference"] == pytest.approx(6.0 / 12)
    assert (lvedv["better"], lvedv["worse"]) == (0, 2)
    assert lvedv["largest_change"] in ("patient003", "patient007")
    assert lvedv["ci_low"] <= lvedv["difference"] <= lvedv["ci_high"]
    b = np.array([abs(r["err_LVEDV"]) for r in base["acdc"]["per_patient"]])
    n = b.copy()
    n[[2, 6]] += 3.0
    assert lvedv["wilcoxon_p"] == pytest.approx(stats.wilcoxon(n, b).pvalue)
    rv = out["rows"]["Dice rv"]
    assert rv["difference"] == pytest.approx(-0.1 / 12)
    assert (rv["better"], rv["worse"]) == (0, 2)
    assert rv["ci_low"] <= rv["difference"] <= rv["ci_high"] <= 0
    # an unchanged class: no difference, no interval, p = 1
    lv = out["rows"]["Dice lv"]
    assert (lv["difference"], lv["ci_low"], lv["ci_high"], lv["wilcoxon_p"]) == (0, 0, 0, 1.0)


def test_different_patients_are_refused():
    rng = np.random.default_rng(2)
    base = result(rng, ["patient001", "patient002"], {})
    new = result(rng, ["patient001", "patient003"], {})
    with pytest.raises(ValueError, match="patient002"):
        compare_accuracy.compare(base, new)
    with pytest.raises(ValueError, match="acdc.per_patient"):
        compare_accuracy.compare({"synthetic": {}}, new)


def test_too_few_patients_get_no_interval():
    rng = np.random.default_rng(4)
    patients = ["patient001", "patient002", "patient003"]
    out = compare_accuracy.compare(result(rng, patients, {}), result(rng, patients, {}))
    row = out["rows"]["RVEF |error|"]
    assert (row["ci_low"], row["ci_high"], row["wilcoxon_p"]) == (None, None, None)
    assert row["better"] + row["worse"] == 3
    assert "n/a" in compare_accuracy.markdown(out, "a", "b")


def test_command_line(tmp_path):
    rng = np.random.default_rng(3)
    patients = [f"patient{i:03d}" for i in range(1, 9)]
    (tmp_path / "a.json").write_text(json.dumps(result(rng, patients, {})))
    (tmp_path / "b.json").write_text(json.dumps(result(rng, patients, {})))
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/compare_accuracy.py"),
            "a.json",
            "b.json",
            "--out",
            "c.json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.startswith("| figure | a | b |")
    assert len(run.stdout.strip().splitlines()) == 2 + 10
    assert json.loads((tmp_path / "c.json").read_text())["n_patients"] == 8
