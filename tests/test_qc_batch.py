"""QC batch tables: every subject a row (failures with reasons), montages, merge and summary."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cardiopheno.io.nifti import save_nifti
from cardiopheno.io.tables import ColumnSpec, column_specs, file_metadata, write_table
from cardiopheno.phenotypes._phantom import make_phantom, phantom_image
from cardiopheno.phenotypes.batch import merge_phenotypes, phenotypes_batch
from cardiopheno.qc.batch import merge_qc, outlier_montages, qc_batch
from cardiopheno.qc.checks import ALL_CHECKS, QCThresholds


def _cohort(tmp_path, n=14):
    rows, man = [], []
    aff = np.diag([2.0, 2.0, 8.0, 1.0])
    for i in range(n):
        p = make_phantom(shape_xy=(64, 64), n_slices=8, n_frames=10, spacing=(2.0, 2.0, 8.0),
                         r_ed_mm=20 + 0.3 * i, r_es_mm=14)  # fmt: skip
        labels = p.labels.copy()
        eid = f"{2000 + i}"
        if i == 1:  # LV missing on three mid slices
            labels[:, :, 3:6][labels[:, :, 3:6] == 1] = 2
        img_path = tmp_path / f"{eid}_sa.nii.gz"
        if i == 2:
            img_path.write_bytes(b"corrupt")
        else:
            save_nifti(img_path, phantom_image(p.labels, i), aff, zooms=(2.0, 2.0, 8.0, 40.0))
        seg_path = tmp_path / f"{eid}_seg.nii.gz"
        save_nifti(seg_path, labels, aff, zooms=(2.0, 2.0, 8.0, 40.0))
        man.append({"eid": eid, "sa": img_path.name})
        rows.append({"eid": eid, "seg_sa": str(seg_path), "source": "model", "ok": i != 3,
                     "reason": "" if i != 3 else "out of memory", "seconds": 1.0,
                     "tta_dice_lv": 0.95, "tta_dice_myo": 0.9 if i != 4 else 0.5,
                     "tta_dice_rv": 0.9})  # fmt: skip
    pd.DataFrame(man).to_csv(tmp_path / "manifest.csv", index=False)
    spec = {c: ColumnSpec("", c) for c in ("seconds", "tta_dice_lv", "tta_dice_myo", "tta_dice_rv")}
    write_table(pd.DataFrame(rows), tmp_path / "seg.parquet", columns=spec, model_sha256="m1")
    return tmp_path / "seg.parquet"


def test_qc_batch_and_merge_keep_every_subject_with_reasons(tmp_path):
    seg = _cohort(tmp_path)
    ph = tmp_path / "ph_b.parquet"
    phenotypes_batch(seg, ph)
    merge_phenotypes([ph], tmp_path / "phenotypes.parquet")
    th = QCThresholds()
    qc = qc_batch(seg, tmp_path / "manifest.csv", ph, tmp_path / "qc_b.parquet",
                  tmp_path / "montages", th)  # fmt: skip
    assert len(qc) == 14
    by = qc.set_index("eid")
    assert not by.loc["2001", "qc_pass"] and "LV absent on 3 of 8" in by.loc["2001", "qc_reasons"]
    assert not by.loc["2002", "qc_pass"] and "img_readable" in by.loc["2002", "qc_reasons"]
    assert not by.loc["2003", "qc_pass"] and "out of memory" in by.loc["2003", "qc_reasons"]
    assert not by.loc["2004", "qc_pass"] and "seg_tta_agreement" in by.loc["2004", "qc_reasons"]
    assert by.drop(index=["2001", "2002", "2003", "2004"])["qc_pass"].all()
    assert pd.isna(by.loc["2003", "seg_components"])  # not run, not "failed"
    montages = sorted(p.stem for p in (tmp_path / "montages").glob("*.png"))
    assert montages == ["2001", "2002", "2003", "2004"]

    merged = merge_qc([tmp_path / "qc_b.parquet"], tmp_path / "phenotypes.parquet",
                      tmp_path / "qc.parquet", tmp_path / "qc_summary.png", th)  # fmt: skip
    assert list(merged.columns) == [
        "eid",
        *ALL_CHECKS,
        "qc_pass",
        "qc_reasons",
        "strain_tracking_reason",
    ]
    stored = pd.read_parquet(tmp_path / "qc.parquet")
    assert str(stored["seg_lv_coverage"].dtype) == "boolean" and len(stored) == 14
    assert set(column_specs(tmp_path / "qc.parquet")) >= {*ALL_CHECKS, "qc_pass"}
    assert file_metadata(tmp_path / "qc.parquet")["model_sha256"] == "m1"
    assert (tmp_path / "qc_summary.png").stat().st_size > 10_000


def test_outlier_montages_only_for_subjects_failing_nothing_else(tmp_path):
    seg = _cohort(tmp_path)
    ph = tmp_path / "ph_b.parquet"
    phenotypes_batch(seg, ph)
    merge_phenotypes([ph], tmp_path / "phenotypes.parquet")
    th = QCThresholds(outlier_z=0.5)  # strict, so that some clean subjects become outliers
    qc_batch(seg, tmp_path / "manifest.csv", ph, tmp_path / "qc_b.parquet",
             tmp_path / "montages", th)  # fmt: skip
    merged = merge_qc([tmp_path / "qc_b.parquet"], tmp_path / "phenotypes.parquet",
                      tmp_path / "qc.parquet", tmp_path / "qc_summary.png", th)  # fmt: skip
    only = merged[merged["qc_reasons"].str.startswith("pheno_outlier:")]
    assert len(only) > 0 and set(only["eid"]).isdisjoint({"2001", "2002", "2003", "2004"})
    (tmp_path / f"{only['eid'].iloc[0]}_seg.nii.gz").unlink()  # moved since QC: a card instead

    eids = outlier_montages(tmp_path / "qc.parquet", [seg], [tmp_path / "manifest.csv"],
                            tmp_path / "outliers")  # fmt: skip
    assert sorted(eids) == sorted(only["eid"])
    drawn = sorted(p.stem for p in (tmp_path / "outliers").glob("*.png"))
    assert drawn == sorted(only["eid"])
    assert all((tmp_path / "outliers" / f"{e}.png").stat().st_size > 5_000 for e in eids)
