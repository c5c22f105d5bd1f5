"""Segmentation accuracy of a checkpoint against expert and synthetic ground truth.

    python benchmarks/segment_accuracy.py [--checkpoint PATH] [--acdc ../shared/data/acdc]
        [--patients 13-16,33-36,53-56,73-76,93-96] [--synthetic DIR] [--n-synthetic 12]
        [--out results/benchmarks/segment_accuracy.json]

ACDC (the validation patients by default): every ED and ES frame goes through the full inference
pipeline (``Segmenter.segment_array``: resampling, heart crop, network, inverse, post-processing)
on its own grid; Dice per class (MONAI ``compute_dice``) against the expert labels; LV/RV volumes
as label count x the voxel volume of ``reference.csv`` against that file's expert volumes; EF
from them. Synthetic: a cohort from ``cardiopheno.synth`` with a seed not used in training
(seed 2; generated unless ``--synthetic`` names one), every frame of every subject, Dice per class
against the truth labels.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from monai.metrics import compute_dice  # noqa: E402
from monai.networks.utils import one_hot  # noqa: E402

from cardiopheno.io.nifti import load_cine  # noqa: E402
from cardiopheno.io.tables import file_sha256, read_any  # noqa: E402
from cardiopheno.segment.data import acdc_ed_spacing, acdc_patient_ids, read_acdc_volume  # noqa: E402
from cardiopheno.segment.infer import Segmenter  # noqa: E402

KEYS = ("lv", "myo", "rv")


def dice_per_class(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice of classes 1..3 over a whole volume (NaN where the truth has none of a class)."""
    p = one_hot(torch.as_tensor(pred.astype(np.int64))[None, None], 4)
    t = one_hot(torch.as_tensor(truth.astype(np.int64))[None, None], 4)
    d = compute_dice(p, t, include_background=False, ignore_empty=True)[0].numpy()
    return {k: float(v) for k, v in zip(KEYS, d, strict=True)}


def acdc(seg: Segmenter, root: Path, patients: list[str]) -> dict:
    ref = pd.read_csv(root / "reference.csv").set_index("patient")
    rows = []
    for pid in patients:
        r = ref.loc[pid]
        for phase, frame in (("ED", int(r.ed_frame)), ("ES", int(r.es_frame))):
            path = root / "volumes" / f"{pid}_frame{frame:02d}.h5"
            image, label = read_acdc_volume(path)  # N x X x Y
            spacing = acdc_ed_spacing(root, pid, float(r.voxel_volume_mm3), int(r.ed_frame))
            pred = seg.segment_array(image.transpose(1, 2, 0), spacing).labels.transpose(2, 0, 1)
            vv = float(r.voxel_volume_mm3) / 1000.0
            rows.append(
                {
                    "patient": pid,
                    "group": r.group,
                    "phase": phase,
                    **{f"dice_{k}": v for k, v in dice_per_class(pred, label).items()},
                    "lv_ml": float((pred == 1).sum() * vv),
                    "rv_ml": float((pred == 3).sum() * vv),
                    "myo_ml": float((pred == 2).sum() * vv),
                    "lv_ref_ml": float(r.lvedv_ml if phase == "ED" else r.lvesv_ml),
                    "rv_ref_ml": float(r.rvedv_ml if phase == "ED" else r.rvesv_ml),
                }
            )
    df = pd.DataFrame(rows)
    out = {"n_patients": len(patients), "patients": patients}
    for phase in ("ED", "ES"):
        sub = df[df.phase == phase]
        out[f"dice_{phase}"] = {k: float(sub[f"dice_{k}"].mean()) for k in KEYS}
    out["dice_all"] = {k: float(df[f"dice_{k}"].mean()) for k in KEYS}
    ed = df[df.phase == "ED"].set_index("patient")
    es = df[df.phase == "ES"].set_index("patient")
    errors = {
        "LVEDV_ml": ed.lv_ml - ed.lv_ref_ml,
        "LVESV_ml": es.lv_ml - es.lv_ref_ml,
        "RVEDV_ml": ed.rv_ml - ed.rv_ref_ml,
        "RVESV_ml": es.rv_ml - es.rv_ref_ml,
        "LVEF_pct": 100 * (1 - es.lv_ml / ed.lv_ml) - ref.loc[ed.index, "lvef_pct"],
        "RVEF_pct": 100 * (1 - es.rv_ml / ed.rv_ml) - ref.loc[ed.index, "rvef_pct"],
        "LVM_g": 1.05 * ed.myo_ml - ref.loc[ed.index, "lvm_ed_g"],
    }
    out["errors"] = {
        k: {"mean": float(v.mean()), "sd": float(v.std()), "mae": float(v.abs().mean())}
        for k, v in errors.items()
    }
    out["per_frame"] = df.round(4).to_dict("records")
    return out


def synthetic(seg: Segmenter, cohort: Path) -> dict:
    manifest = read_any(cohort / "manifest.csv")
    faults_path = cohort / "truth" / "faults.parquet"
    faulty = set(read_any(faults_path)["eid"]) if faults_path.is_file() else set()
    rows = []
    for row in manifest.itertuples(index=False):
        if str(row.eid) in faulty:
            continue
        cine = load_cine(cohort / row.sa)
        truth = load_cine(cohort / "truth" / "labels" / f"{row.eid}.nii.gz").data.astype(np.uint8)
        pred = seg.segment_array(cine.data, cine.spacing).labels
        rows.append({"eid": str(row.eid), **dice_per_class(pred, truth)})
    df = pd.DataFrame(rows)
    return {
        "n_subjects": len(df),
        "dice_all_frames": {k: float(df[k].mean()) for k in KEYS},
        "dice_min_subject": {k: float(df[k].min()) for k in KEYS},
        "per_subject": df.round(4).to_dict("records"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--acdc", default=str(REPO.parent / "shared/data/acdc"))
    ap.add_argument("--patients", default="13-16,33-36,53-56,73-76,93-96")
    ap.add_argument("--synthetic", default=None, help="synthetic cohort folder (default: generate)")
    ap.add_argument("--n-synthetic", type=int, default=12)
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--flip-ensemble", type=int, default=1, help="flipped copies averaged (config default: 1)"
    )
    ap.add_argument("--precision", default="auto", help="auto, float32, bfloat16 or float16")
    ap.add_argument("--out", default=str(REPO / "results/benchmarks/segment_accuracy.json"))
    args = ap.parse_args()
    seg = Segmenter(
        args.checkpoint,
        args.device,
        tta=False,
        flip_ensemble=args.flip_ensemble,
        precision=args.precision,
    )
    result = {
        "checkpoint": str(seg.checkpoint),
        "flip_ensemble": args.flip_ensemble,
        "precision": seg.precision,
        "checkpoint_sha256": seg.sha256,
        "note": "ACDC in-plane spacing estimated from reference.csv voxel volume (see MODEL_CARD)",
    }
    t0 = time.perf_counter()
    if Path(args.acdc).is_dir():
        result["acdc"] = acdc(seg, Path(args.acdc), acdc_patient_ids(args.patients))
        print("ACDC Dice ED", result["acdc"]["dice_ED"], "ES", result["acdc"]["dice_ES"])
        print("ACDC errors", {k: round(v["mean"], 2) for k, v in result["acdc"]["errors"].items()})
    cohort = Path(args.synthetic) if args.synthetic else None
    if cohort is None:
        from cardiopheno.synth.cohort import generate_cohort

        cohort = Path(tempfile.mkdtemp()) / "synthetic_seed2"
        generate_cohort(cohort, args.n_synthetic, seed=2, fault_fraction=0.0, n_jobs=1)
    result["synthetic"] = synthetic(seg, cohort)
    print("synthetic Dice", result["synthetic"]["dice_all_frames"])
    result["seconds"] = time.perf_counter() - t0
    result["checkpoint_sha256"] = file_sha256(seg.checkpoint)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
