"""Validate phenotypes and QC against independent truth; write JSON and a BENCHMARKS section.

Parts (each runs when its inputs exist, else is recorded as not run with the reason):

- ``acdc_expert``: ACDC expert labels (../shared/data/acdc, ED and ES frames) through our
  lv_function/rv_function with the voxel volume of reference.csv; every volume, EF and LV mass
  must reproduce reference.csv within 0.1 %.
- ``synthetic``: a synthetic cohort (cardiopheno.synth.cohort.generate_cohort) with a high fault
  fraction: phenotypes from the truth labels against the truth table (MAE on QC-passed subjects),
  QC sensitivity per injected fault type and false QC failures on clean subjects.
- ``sunnybrook_expert``: LV EDV, ESV, EF from the Sunnybrook expert contours (labelled slices
  only): our phenotype code on the expert's labels against the expert's own figures. The
  shipped model against these contours is benchmarks/sunnybrook_reference.py's job.

    .venv/bin/python benchmarks/validate_phenotypes.py [--parts acdc_expert synthetic ...]

Writes results/benchmarks/validate_phenotypes.json; BENCHMARKS.md quotes its figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import re
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
        "model": "measured by benchmarks/sunnybrook_reference.py, not here",
    }


def labels_on_faulty_grid(labels: np.ndarray, fault: str, detail: str, ed: int) -> np.ndarray:
    """What a perfect model would output on the faulty image: the truth labels (drawn on the
    clean acquisition) put through the same geometric change as the image."""
    if fault == "missing_basal_slices":
        m = int(re.search(r"top (\d+)", detail).group(1))
        return labels[:, :, m:]
    if fault == "interslice_motion":
        out = labels.copy()
        for k, dx, dy in re.findall(r"slice (\d+) by \((-?\d+), (-?\d+)\) px", detail):
            out[:, :, int(k)] = np.roll(labels[:, :, int(k)], (int(dx), int(dy)), axis=(0, 1))
        return out
    if fault == "swapped_axes":
        return np.ascontiguousarray(np.swapaxes(labels, 2, 3))
    if fault == "missing_frames":
        return labels[..., :3]
    if fault == "wrong_dimensionality" and detail.startswith("3D"):
        return labels[..., [ed]]
    if fault == "blank_image":
        return np.zeros_like(labels)  # nothing to segment
    return labels


def synthetic(n_subjects: int, fault_fraction: float, seed: int, cohort: str | None) -> dict:
    """QC and phenotypes on a synthetic cohort, through the workflow's own per-subject QC."""
    from cardiopheno.io.nifti import load_cine, save_nifti
    from cardiopheno.io.tables import read_table
    from cardiopheno.qc.batch import subject_checks, summarise
    from cardiopheno.qc.checks import QCThresholds
    from cardiopheno.qc.phenotype import robust_outliers
    from cardiopheno.synth.cohort import generate_cohort

    th = QCThresholds()
    fams = resolve_families()
    gen_s = 0.0
    if cohort:
        manifest = Path(cohort) / "manifest.csv"
    else:
        t0 = time.time()
        manifest = Path(generate_cohort(Path(tempfile.mkdtemp(dir="/tmp")), n_subjects, seed,
                                        fault_fraction, 2))  # fmt: skip
        gen_s = time.time() - t0
    truth_dir = manifest.parent / "truth"
    truth = read_table(truth_dir / "idps.parquet")
    faults = read_table(truth_dir / "faults.parquet")
    fault_of = dict(zip(faults["eid"], faults["fault"], strict=True))
    detail_of = dict(zip(faults["eid"], faults["detail"], strict=True))
    ed_of = dict(zip(truth["eid"], truth["ED_frame"], strict=True))
    man = pd.read_csv(manifest, dtype={"eid": str})
    cov = pd.read_csv(manifest.parent / "covariates.csv", dtype={"eid": str}).set_index("eid")
    rows = []
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        for rec in man.itertuples(index=False):
            eid = rec.eid
            fault = fault_of.get(eid, "none")
            truth_seg = load_cine(truth_dir / "labels" / f"{eid}.nii.gz", dtype=np.uint8)
            labels = labels_on_faulty_grid(
                truth_seg.data, fault, str(detail_of.get(eid, "")), int(ed_of.get(eid, 0))
            )
            seg_path = Path(tmp) / f"{eid}.nii.gz"
            zooms = (*truth_seg.spacing, truth_seg.frame_interval_ms or 0.0)
            save_nifti(seg_path, labels, truth_seg.affine, zooms=zooms[: labels.ndim])
            covs = cov.loc[eid].to_dict() if eid in cov.index else {}
            vals = {}
            try:
                ctx = SubjectContext(labels, truth_seg.spacing, truth_seg.frame_interval_ms, covs,
                                     eid=eid)  # fmt: skip
                vals = compute_phenotypes(ctx, fams)
                vals["phenotypes_ok"] = True
            except ValueError as exc:
                vals = {"phenotypes_ok": False, "phenotypes_reason": str(exc)}
            results, _, _ = subject_checks(
                eid, str(manifest.parent / rec.sa), str(seg_path), True, "", {}, vals, th
            )
            rows.append({"eid": eid, "fault": fault, **vals, **summarise(results)})
    df = pd.DataFrame(rows)
    ok, why = robust_outliers(df, df["qc_pass"], th)
    df["qc_pass"] = df["qc_pass"] & ok
    merged = df.merge(truth, on="eid", how="left", suffixes=("", "_true"))
    clean_pass = merged[(merged["fault"] == "none") & merged["qc_pass"]]
    mae = {}
    for k in ("LVEDV", "LVESV", "RVEDV", "RVESV", "LVEF", "RVEF", "LVM", "WT_global"):
        for suffix in ("_true", "_analytic"):
            if f"{k}{suffix}" in merged.columns:
                err = (clean_pass[k] - clean_pass[f"{k}{suffix}"]).abs()
                mae[f"{k}_vs{suffix}"] = round(float(err.mean()), 4)
    sens = {}
    for f in sorted(set(df["fault"]) - {"none"}):
        sub = df[df["fault"] == f]
        sens[f] = {
            "n": len(sub),
            "flagged": int((~sub["qc_pass"]).sum()),
            "sensitivity": float((~sub["qc_pass"]).mean()),
            "example_reason": str(sub["qc_reasons"].iloc[0])[:200],
        }
    clean = df[df["fault"] == "none"]
    failed = clean[~clean["qc_pass"]]
    return {
        "n_subjects": len(df),
        "fault_fraction": fault_fraction,
        "seed": seed,
        "generation_seconds": round(gen_s, 1),
        "segmentation": "truth labels moved onto each faulty image's grid (a perfect model); "
        "QC with the model's segmentations: benchmarks/run_against_truth.py on a workflow run",
        "mae_on_clean_qc_passed": mae,
        "qc_sensitivity": sens,
        "false_failures_on_clean": {
            "n": len(clean),
            "failed": len(failed),
            "rate": float(len(failed) / len(clean)) if len(clean) else math.nan,
            "reasons": (failed["qc_reasons"] + " " + why[failed.index]).head(10).tolist(),
        },
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", default=["acdc_expert", "sunnybrook_expert", "synthetic"])
    ap.add_argument("--n-subjects", type=int, default=200)
    ap.add_argument("--fault-fraction", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cohort", help="an existing synthetic cohort folder (skip generation)")
    args = ap.parse_args()
    result: dict = {
        "cardiopheno": cardiopheno.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    runners = {
        "acdc_expert": acdc_expert,
        "sunnybrook_expert": sunnybrook_expert,
        "synthetic": lambda: synthetic(
            args.n_subjects, args.fault_fraction, args.seed, args.cohort
        ),
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
