"""The registry (discovery, dependency order, declared outputs), the batch Parquet and the CLI."""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from cardiopheno.io.nifti import save_nifti
from cardiopheno.io.tables import ColumnSpec, column_specs, file_metadata, write_table
from cardiopheno.phenotypes import (
    PhenotypeSpec,
    SubjectContext,
    compute_phenotypes,
    discover_families,
    output_specs,
    resolve_families,
)
from cardiopheno.phenotypes import cli as phenotypes_cli
from cardiopheno.phenotypes._phantom import make_phantom
from cardiopheno.phenotypes.batch import merge_phenotypes, phenotypes_batch

CONTRACT = (
    ["LVEDV", "LVESV", "LVSV", "LVEF", "LVCO", "HR", "LVM", "RVEDV", "RVESV", "RVSV", "RVEF"]
    + ["LVEDVi", "LVESVi", "LVSVi", "LVMi", "RVEDVi", "RVESVi", "RVSVi", "ED_frame", "ES_frame"]
    + ["LV_PER", "LV_PFR_E", "LV_PFR_A", "WT_global", "WT_max"]
    + [f"WT_AHA_{k}" for k in range(1, 17)]
)


def test_registry_discovers_every_family_with_contract_names_and_units():
    fams = discover_families()
    assert set(fams) == {
        "lv_function",
        "rv_function",
        "volume_curve",
        "wall_thickness",
        "atrial_function",
        "aortic_function",
        "strain",
        "longitudinal_strain",
    }
    specs = {s.name: s for s in output_specs(list(fams.values()))}
    assert set(CONTRACT) <= set(specs)
    assert specs["LVEDV"].unit == "mL" and specs["LVEF"].unit == "%" and specs["LVM"].unit == "g"
    assert specs["LVEDVi"].unit == "mL/m2" and specs["WT_AHA_3"].unit == "mm"
    assert specs["LAV_max"].unit == "mL" and specs["RAEF"].unit == "%"
    assert specs["Ecc_AHA_7"].unit == "%" and specs["Err_global"].unit == "%"
    assert specs["Ell_global"].unit == "%"
    assert all(s.description for s in specs.values())


def test_unknown_family_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown phenotype family.*nope"):
        resolve_families(["lv_function", "nope"])


def test_new_family_module_is_discovered_and_runs_after_what_it_requires(tmp_path, monkeypatch):
    pkg = tmp_path / "myfams"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "base.py").write_text(
        textwrap.dedent(
            """
            from cardiopheno.phenotypes import PhenotypeSpec
            FAMILY = "base"
            OUTPUTS = [PhenotypeSpec("A", "mL", "a")]
            def compute(ctx):
                return {"A": 2.0}
            """
        )
    )
    (pkg / "derived.py").write_text(
        textwrap.dedent(
            """
            from cardiopheno.phenotypes import PhenotypeSpec
            FAMILY = "derived"
            REQUIRES = ("base",)
            OUTPUTS = [PhenotypeSpec("B", "mL", "twice A")]
            def compute(ctx):
                return {"B": 2 * ctx.values["A"]}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    fams = resolve_families(["derived"], package="myfams")
    assert [f.name for f in fams] == ["base", "derived"]
    ctx = SubjectContext(np.ones((2, 2, 1, 1), np.uint8), (1.0, 1.0, 1.0))
    assert compute_phenotypes(ctx, fams) == {"A": 2.0, "B": 4.0}
    sys.modules.pop("myfams", None)


def test_phenotype_spec_is_a_plain_record():
    s = PhenotypeSpec("X", "mm", "x")
    assert (s.name, s.unit, s.description, s.dtype) == ("X", "mm", "x", "float")


def _segment_table(tmp_path, n_ok=2):
    rows = []
    for i in range(n_ok + 1):
        p = make_phantom(shape_xy=(64, 64), n_slices=6, n_frames=12, spacing=(2.0, 2.0, 8.0),
                         r_ed_mm=18 + i, r_es_mm=12)  # fmt: skip
        path = tmp_path / f"seg{i}.nii.gz"
        save_nifti(path, p.labels, np.diag([2.0, 2.0, 8.0, 1.0]), zooms=(2.0, 2.0, 8.0, 40.0))
        ok = i < n_ok
        rows.append(
            {"eid": f"{1000 + i}", "seg_sa": str(path), "source": "model", "ok": ok,
             "reason": "" if ok else "network diverged", "seconds": 0.1,
             "tta_dice_lv": np.nan, "tta_dice_myo": np.nan, "tta_dice_rv": np.nan,
             "LVEDV_sd": 2.5 + i}
        )  # fmt: skip
    specs = {
        c: ColumnSpec("", c)
        for c in ("seconds", "tta_dice_lv", "tta_dice_myo", "tta_dice_rv", "LVEDV_sd")
    }
    write_table(pd.DataFrame(rows), tmp_path / "b0000.parquet", columns=specs, model_sha256="abc")
    pd.DataFrame({"eid": ["1000", "1001"], "height_cm": [170, 180], "weight_kg": [60, 90]}).to_csv(
        tmp_path / "cov.csv", index=False
    )
    return tmp_path / "b0000.parquet"


def test_batch_parquet_has_every_subject_units_and_metadata(tmp_path):
    seg = _segment_table(tmp_path)
    out = tmp_path / "ph" / "b0000.parquet"
    df = phenotypes_batch(seg, out, tmp_path / "cov.csv", config={"phenotypes": {}})
    assert list(df["eid"]) == ["1000", "1001", "1002"]
    assert df["phenotypes_ok"].tolist() == [True, True, False]
    assert "network diverged" in df.loc[2, "phenotypes_reason"]
    assert math.isnan(df.loc[2, "LVEDV"])
    # the segment stage's uncertainty travels beside the value; absent columns are NaN
    assert df["LVEDV_sd"].tolist()[:2] == [2.5, 3.5] and math.isnan(df.loc[2, "LVEDV_sd"])
    assert df["LVEF_sd"].isna().all()
    assert df.loc[0, "HR"] == pytest.approx(60000 / (12 * 40.0), rel=1e-5)
    specs = column_specs(out)
    assert specs["LVEDV"].unit == "mL" and specs["LVMi"].unit == "g/m2"
    assert specs["LVEDV_sd"].unit == "mL" and "Not an IDP" in specs["LVEF_sd"].description
    meta = file_metadata(out)
    assert meta["model_sha256"] == "abc" and meta["config_hash"] and meta["cardiopheno_version"]
    merged = merge_phenotypes([out], tmp_path / "phenotypes.parquet")
    assert len(merged) == 3
    assert file_metadata(tmp_path / "phenotypes.parquet")["model_sha256"] == "abc"
    assert str(pd.read_parquet(tmp_path / "phenotypes.parquet")["ED_frame"].dtype) == "Int64"


def main(argv: list[str]) -> int:
    """The `cardiopheno phenotypes` subcommand alone (other stages' commands may be absent)."""
    parser = argparse.ArgumentParser(prog="cardiopheno")
    phenotypes_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_writes_json_with_values_and_units(tmp_path):
    _segment_table(tmp_path)
    out = tmp_path / "one.json"
    rc = main(["phenotypes", "--seg", str(tmp_path / "seg0.nii.gz"), "--ed-frame", "first",
               "--height-cm", "170", "--weight-kg", "70", "--out", str(out)])  # fmt: skip
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["values"]["ED_frame"] == 0 and doc["units"]["LVEDV"] == "mL"
    assert doc["frame_interval_ms"] == pytest.approx(40.0)
    assert doc["values"]["LVEDVi"] > 0


def test_cli_names_an_unreadable_file(tmp_path, caplog):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a nifti")
    assert main(["phenotypes", "--seg", str(bad)]) == 1
    assert "broken.nii.gz" in caplog.text


def test_es_ignores_frames_without_any_lv_label():
    """Partly labelled segmentations (only ED and ES contoured) must not put ES on an empty frame."""
    from cardiopheno.phenotypes.registry import (
        SubjectContext,
        compute_phenotypes,
        resolve_families,
    )

    seg = np.zeros((20, 20, 2, 6), np.uint8)
    seg[5:15, 5:15, :, 4] = 1  # ED: 100 voxels per slice
    seg[7:13, 7:13, :, 1] = 1  # ES: 36 voxels per slice; frames 0, 2, 3, 5 unlabelled
    ctx = SubjectContext(seg, (1.0, 1.0, 10.0), 40.0)
    values = compute_phenotypes(ctx, resolve_families(["lv_function"]))
    assert values["ED_frame"] == 4 and values["ES_frame"] == 1
    assert values["LVESV"] == pytest.approx(2 * 36 * 10 / 1000)
