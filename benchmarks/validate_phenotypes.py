"""Validate phenotypes and QC against independent truth; write JSON and a BENCHMARKS section.

Parts (each runs when its inputs exist, else is recorded as not run with the reason):

- ``acdc_expert``: ACDC expert labels (../shared/data/acdc, ED and ES frames) through our
  lv_function/rv_function with the voxel volume of reference.csv; every volume, EF and LV mass
  must reproduce reference.csv within 0.1 %.
- ``synthetic``: a synthetic cohort (cardiopheno.synth.cohort.generate_cohort) with a high fault
  fraction: phenotypes from the truth labels against the truth table (MAE on QC-passed subjects),
  QC sensitivity per injected fault type and false QC failures on clean subjects.
- ``sunnybrook_expert``: LV EDV, ESV, EF from the Sunnybrook expert contours (labelled slices
  only), as the reference for the model once its segmentations are available.

    .venv/bin/python benchmarks/validate_phenotypes.py [--parts acdc_expert synthetic ...]

Writes results/benchmarks/validate_phenotypes.json and benchmarks/BENCHMARKS_phenotypes.md's
measured tables (the lead folds it into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

import cardiopheno
from cardiopheno import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY
from cardiopheno.phenotypes import SubjectContext, compute_phenotypes, resolve_families

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "results" / "benchmarks" / "validate_phenotypes.json"
log = logging.getLogger("validate_phenotypes")
ACDC_TO_OURS = np.array([0, RV_CAVITY, LV_MYOCARDIUM, LV_CAVITY], dtype=np.uint8)


def acdc_labels(path: Path) -> np.ndarray:
    """ACDC label volume (z, y, x; 1 RV, 2 myo, 3 LV) as ours (x, y, z; 1 LV, 2 myo, 3 RV)."""
    with h5py.File(path, "r") as f:
        lab = np.asarray(f["label"], dtype=np.uint8)
    return ACDC_TO_OURS[lab].transpose(2, 1, 0)


def acdc_expert() -> dict:
    ref = pd.read_csv(SHARED / "acdc" / "reference.csv")
    fams = resolve_families(["lv_function", "rv_function"])
    cols = {
        "LVEDV": "lvedv_ml", "LVESV": "lvesv_ml", "RVEDV": "rvedv_ml", "RVESV": "rvesv_ml",
        "LVM": "lvm_ed_g", "LVEF": "lvef_pct", "RVEF": "rvef_pct",
    }  # fmt: skip
    rows = []
    for r in ref.itertuples(index=False):
        vol = SHARED / "acdc" / "volumes"
        ed = acdc_labels(vol / f"{r.patient}_frame{r.ed_frame:02d}.h5")
        es = acdc_labels(vol / f"{r.patient}_frame{r.es_frame:02d}.h5")
        # no spacing stored: any split of the voxel volume gives the same volumes
        ctx = SubjectContext(
            np.stack([ed, es], axis=3), (1.0, 1.0, float(r.voxel_volume_mm3)), None,
            ed_frame_mode="first", eid=r.patient,
        )  # fmt: skip
        v = compute_phenotypes(ctx, fams)
        row = {"patient": r.patient, "ES_is_frame_1": v["ES_frame"] == 1}
        for ours, theirs in cols.items():
            expected = float(getattr(r, theirs))
            row[f"{ours}_ours"] = v[ours]
            row[f"{ours}_ref"] = expected
            row[f"{ours}_relerr"] = abs(v[ours] - expected) / abs(expected)
        rows.append(row)
    df = pd.DataFrame(rows)
    worst = {k: float(df[f"{k}_relerr"].max()) for k in cols}
    return {
        "n_patients": len(df),
        "max_relative_error": worst,
        "max_relative_error_all": max(worst.values()),
        "within_0.1_percent": bool(max(worst.values()) <= 1e-3),
        "es_frame_is_reference_es": int(df["ES_is_frame_1"].sum()),
    }


def sunnybrook_expert() -> dict:
    from cardiopheno.io.sunnybrook import expert_lv_volumes, load_sunnybrook_case

    links = pd.read_csv(SHARED / "sunnybrook" / "link.csv")
    out = {}
    for rec in links.to_dict(orient="records"):
        values = list(rec.values())
        dicom = next(v for v in values if str(v).startswith("SCD"))
        contours = next(v for v in values if str(v).startswith("SC-"))
        case = load_sunnybrook_case(
            SHARED / "sunnybrook" / "dicoms" / dicom, SHARED / "sunnybrook" / "contours" / contours
        )
        expert = expert_lv_volumes(case)
        ed, es = int(expert["ED_frame"]), int(expert["ES_frame"])
        # our lv_function on the rasterised expert labels of the two contoured frames
        ctx = SubjectContext(case.labels[..., [ed, es]], case.image.spacing, None, eid=dicom,
                             ed_frame_mode="first")  # fmt: skip
        ours = compute_phenotypes(ctx, resolve_families(["lv_function"]))
        out[dicom] = {
            "expert_module": {k: expert[k] for k in ("LVEDV", "LVESV", "LVEF", "LVM")},
            "ours_from_expert_labels": {k: ours[k] for k in ("LVEDV", "LVESV", "LVEF", "LVM")},
            "ED_frame": ed,
            "ES_frame": es,
            "contoured_slices": len(expert["contoured_slices"]),
        }
    return {
        "expert": out,
        "model": "not run: no segmentation inference API in cardiopheno.segment yet",
    }


def synthetic(n_subjects: int, fault_fraction: float, seed: int) -> dict:
    from cardiopheno.synth.cohort import generate_cohort  # noqa: PLC0415 (optional part)

    from cardiopheno.io.nifti import load_cine
    from cardiopheno.io.tables import read_table
    from cardiopheno.qc.checks import QCThresholds
    from cardiopheno.qc.image import check_image
    from cardiopheno.qc.phenotype import check_phenotypes, robust_outliers
    from cardiopheno.qc.segmentation import check_segmentation

    th = QCThresholds()
    fams = resolve_families()
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        t0 = time.time()
        manifest = Path(generate_cohort(Path(tmp), n_subjects, seed, fault_fraction, 2))
        gen_s = time.time() - t0
        truth_dir = manifest.parent / "truth"
        truth = read_table(truth_dir / "idps.parquet")
        faults = read_table(truth_dir / "faults.parquet")
        man = pd.read_csv(manifest, dtype={"eid": str})
        cov = pd.read_csv(manifest.parent / "covariates.csv", dtype={"eid": str}).set_index("eid")
        rows = []
        for rec in man.itertuples(index=False):
            eid = rec.eid
            row = {"eid": eid}
            results = []
            try:
                cine = load_cine(manifest.parent / rec.sa)
                results += check_image(cine, th)
            except Exception as exc:  # unreadable: a QC failure, as in the workflow
                row["qc_reason"] = f"img_readable: {exc}"
                rows.append({**row, "qc_pass": False})
                continue
            seg = load_cine(truth_dir / "labels" / f"{eid}.nii.gz", dtype=np.uint8)
            results += check_segmentation(seg.data, seg.spacing, th)
            covs = cov.loc[eid].to_dict() if eid in cov.index else {}
            ctx = SubjectContext(seg.data, seg.spacing, seg.frame_interval_ms, covs, eid=eid)
            vals = compute_phenotypes(ctx, fams)
            results += check_phenotypes(vals, th)
            failed = [f"{r.name}: {r.reason}" for r in results if r.passed is False]
            rows.append({**row, **vals, "qc_pass": not failed, "qc_reason": "; ".join(failed)})
        df = pd.DataFrame(rows)
        ok, _ = robust_outliers(df, df["qc_pass"], th)
        df["qc_pass"] = df["qc_pass"] & ok
    faulty = dict(zip(faults["eid"].astype(str), faults["fault"], strict=True))
    df["fault"] = df["eid"].map(faulty).fillna("none")
    merged = df.merge(truth, on="eid", how="left", suffixes=("", "_true"))
    clean_pass = merged[(merged["fault"] == "none") & merged["qc_pass"]]
    mae = {}
    for k in ("LVEDV", "LVESV", "RVEDV", "RVESV", "LVEF", "RVEF", "LVM"):
        for suffix in ("_true", "_analytic"):
            col = f"{k}{suffix}" if f"{k}{suffix}" in merged.columns else None
            if col:
                mae[f"{k}_vs{suffix}"] = float((clean_pass[k] - clean_pass[col]).abs().mean())
    sens = {
        f: {"n": int((df["fault"] == f).sum()), "flagged": int((~df.loc[df["fault"] == f, "qc_pass"]).sum())}
        for f in sorted(set(df["fault"]) - {"none"})
    }  # fmt: skip
    for s in sens.values():
        s["sensitivity"] = s["flagged"] / s["n"] if s["n"] else math.nan
    clean = df[df["fault"] == "none"]
    return {
        "n_subjects": n_subjects,
        "fault_fraction": fault_fraction,
        "seed": seed,
        "generation_seconds": round(gen_s, 1),
        "segmentation": "truth labels (model segmentations: not run, no inference API yet)",
        "mae_on_clean_qc_passed": mae,
        "qc_sensitivity": sens,
        "false_failures_on_clean": {
            "n": len(clean),
            "failed": int((~clean["qc_pass"]).sum()),
            "rate": float((~clean["qc_pass"]).mean()) if len(clean) else math.nan,
            "reasons": clean.loc[~clean["qc_pass"], "qc_reason"].head(10).tolist(),
        },
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", default=["acdc_expert", "sunnybrook_expert", "synthetic"])
    ap.add_argument("--n-subjects", type=int, default=200)
    ap.add_argument("--fault-fraction", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    result: dict = {
        "cardiopheno": cardiopheno.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    runners = {
        "acdc_expert": acdc_expert,
        "sunnybrook_expert": sunnybrook_expert,
        "synthetic": lambda: synthetic(args.n_subjects, args.fault_fraction, args.seed),
    }
    for part in args.parts:
        try:
            result[part] = runners[part]()
        except (ImportError, FileNotFoundError) as exc:
            result[part] = {"not_run": f"{type(exc).__name__}: {exc}"}
        log.info("%s: %s", part, json.dumps(result[part], default=str)[:800])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
