"""Segmentation accuracy of a checkpoint against expert and synthetic ground truth.

    python benchmarks/segment_accuracy.py [--checkpoint PATH] [--acdc ../shared/data/acdc]
        [--patients 13-16,33-36,53-56,73-76,93-96] [--synthetic DIR] [--n-synthetic 12]
        [--out results/benchmarks/segment_accuracy.json] [--worst 4] [--compare BASE.json]

ACDC (the validation patients by default): every ED and ES frame goes through the full inference
pipeline (``Segmenter.segment_array``: resampling, heart crop, network, inverse, post-processing)
on its own grid; Dice per class (MONAI ``compute_dice``) against the expert labels; LV/RV volumes
as label count x the voxel volume of ``reference.csv`` against that file's expert volumes; EF
from them. Per patient: signed volume, EF and mass errors, mean Dice, and the phenotype
uncertainty of :mod:`cardiopheno.segment.uncertainty` (SD over the flip-ensemble passes' own
labels); per pathology group (DCM, HCM, MINF, NOR, RV: ``reference.csv``) Dice and error; the
``--worst`` patients (largest mean of |error| / cohort MAE over the seven phenotypes) are named
with the phenotypes that make them worst and get a montage each
(``results/benchmarks/acdc_worst/<patient>.png``: image, expert and model contours at ED and ES
on the three slices of lowest Dice; results/ is git-ignored, and ACDC images must never be
committed). Synthetic: a cohort from ``cardiopheno.synth`` with a seed not used in training
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

from cardiopheno import RV_CAVITY  # noqa: E402
from cardiopheno.definitions import MYOCARDIAL_DENSITY_G_PER_ML  # noqa: E402
from cardiopheno.io.nifti import load_cine  # noqa: E402
from cardiopheno.io.tables import file_sha256, read_any  # noqa: E402
from cardiopheno.segment.data import acdc_ed_spacing, acdc_patient_ids, read_acdc_volume  # noqa: E402
from cardiopheno.segment.infer import ComputeOptions, PassOptions, Segmenter  # noqa: E402
from cardiopheno.segment.uncertainty import pass_phenotypes  # noqa: E402
from cardiopheno.stats.subgroups import by_group, spread  # noqa: E402

KEYS = ("lv", "myo", "rv")
PHENOTYPES = ("LVEDV", "LVESV", "LVEF", "LVM", "RVEDV", "RVESV", "RVEF")
UNITS = {"LVEF": "pct", "RVEF": "pct", "LVM": "g"}  # else mL


def dice_per_class(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice of classes 1..3 over a whole volume (NaN where the truth has none of a class)."""
    p = one_hot(torch.as_tensor(pred.astype(np.int64))[None, None], 4)
    t = one_hot(torch.as_tensor(truth.astype(np.int64))[None, None], 4)
    d = compute_dice(p, t, include_background=False, ignore_empty=True)[0].numpy()
    return {k: float(v) for k, v in zip(KEYS, d, strict=True)}


def acdc(
    seg: Segmenter,
    root: Path,
    patients: list[str],
    worst: int = 4,
    montage_dir: Path | None = None,
    own_reference: bool = False,
) -> dict:
    ref = pd.read_csv(root / "reference.csv").set_index("patient")
    rows = []
    arrays: dict[tuple[str, str], tuple] = {}  # (patient, phase) -> image, expert, model
    passes: dict[tuple[str, str], np.ndarray | None] = {}
    for pid in patients:
        r = ref.loc[pid]
        ed_image = None
        for phase, frame in (("ED", int(r.ed_frame)), ("ES", int(r.es_frame))):
            path = root / "volumes" / f"{pid}_frame{frame:02d}.h5"
            image, label = read_acdc_volume(path)  # N x X x Y
            if ed_image is None or own_reference:
                ed_image = image  # the cine's first frame (or, ablated, the frame itself)
            spacing = acdc_ed_spacing(root, pid, float(r.voxel_volume_mm3), int(r.ed_frame))
            out = seg.segment_array(
                image.transpose(1, 2, 0), spacing, reference=ed_image.transpose(1, 2, 0)
            )
            pred = out.labels.transpose(2, 0, 1)
            arrays[(pid, phase)] = (image, label, pred)
            passes[(pid, phase)] = out.pass_counts
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
        "LVM_g": MYOCARDIAL_DENSITY_G_PER_ML * ed.myo_ml - ref.loc[ed.index, "lvm_ed_g"],
    }
    out["errors"] = {
        k: {"mean": float(v.mean()), "sd": float(v.std()), "mae": float(v.abs().mean())}
        for k, v in errors.items()
    }
    out["per_frame"] = df.round(4).to_dict("records")
    out["rv_error_by_slice_position"] = rv_error_by_position(arrays, ref)
    patients_df = per_patient(df, ref, passes)
    out["per_patient"] = patients_df.round(4).to_dict("records")
    out["by_group"] = group_summary(patients_df)
    out["worst"] = worst_patients(patients_df, worst)
    if montage_dir is not None:
        for w in out["worst"]:
            pid = w["patient"]
            w["montage"] = str(
                worst_montage(montage_dir / f"{pid}.png", pid, w["why"], arrays, pid)
            )
    return out


RV_POSITIONS = ("before", "first", "middle", "last", "after")


def rv_error_by_position(arrays: dict, ref: pd.DataFrame) -> dict:
    """Where the RV volume error lies along the stack: model - expert RV volume (mL, mean per
    patient) per phase on the slices before the expert's first RV slice (ACDC stacks start at
    the base), on that slice, between, on the last and after it."""
    sums = {phase: dict.fromkeys(RV_POSITIONS, 0.0) for phase in ("ED", "ES")}
    counts = {"ED": 0, "ES": 0}
    for (pid, phase), (_, label, pred) in arrays.items():
        vv = float(ref.loc[pid, "voxel_volume_mm3"]) / 1000.0
        expert = (label == RV_CAVITY).sum(axis=(1, 2)) * vv
        model = (pred == RV_CAVITY).sum(axis=(1, 2)) * vv
        slices = np.flatnonzero(expert > 0)
        if not len(slices):
            continue
        first, last = slices[0], slices[-1]
        z = np.arange(len(expert))
        where = np.select(
            [z < first, z == first, z < last, z == last], RV_POSITIONS[:4], RV_POSITIONS[4]
        )
        for pos in RV_POSITIONS:
            sums[phase][pos] += float((model - expert)[where == pos].sum())
        counts[phase] += 1
    return {
        phase: {pos: v / max(1, counts[phase]) for pos, v in by_pos.items()}
        for phase, by_pos in sums.items()
    }


def per_patient(frames: pd.DataFrame, ref: pd.DataFrame, passes: dict) -> pd.DataFrame:
    """One row per patient: group, mean Dice per class (ED and ES), signed error of each key
    phenotype (model - expert) and its uncertainty ``<IDP>_sd`` from the passes' own labels."""
    rows = []
    for pid, sub in frames.groupby("patient", sort=True):
        ed = sub[sub.phase == "ED"].iloc[0]
        es = sub[sub.phase == "ES"].iloc[0]
        r = ref.loc[pid]
        lvedv, lvesv, rvedv, rvesv = ed.lv_ml, es.lv_ml, ed.rv_ml, es.rv_ml
        model = {
            "LVEDV": lvedv,
            "LVESV": lvesv,
            "LVEF": 100 * (1 - lvesv / lvedv),
            "LVM": MYOCARDIAL_DENSITY_G_PER_ML * ed.myo_ml,
            "RVEDV": rvedv,
            "RVESV": rvesv,
            "RVEF": 100 * (1 - rvesv / rvedv),
        }
        expert = {
            "LVEDV": r.lvedv_ml,
            "LVESV": r.lvesv_ml,
            "LVEF": r.lvef_pct,
            "LVM": r.lvm_ed_g,
            "RVEDV": r.rvedv_ml,
            "RVESV": r.rvesv_ml,
            "RVEF": r.rvef_pct,
        }
        row = {"patient": pid, "group": r.group}
        row.update({f"dice_{k}": float(sub[f"dice_{k}"].mean()) for k in KEYS})
        row["dice_mean"] = float(np.mean([row[f"dice_{k}"] for k in KEYS]))
        row.update({f"err_{k}": float(model[k] - expert[k]) for k in PHENOTYPES})
        row.update({f"ref_{k}": float(expert[k]) for k in PHENOTYPES})
        ped, pes = passes.get((pid, "ED")), passes.get((pid, "ES"))
        if ped is not None and pes is not None:
            counts = np.stack([ped[:, 0], pes[:, 0]], axis=1)  # passes x (ED, ES) x labels
            values = pass_phenotypes(counts, float(r.voxel_volume_mm3) / 1000.0)
            row.update({f"{k}_sd": float(np.std(values[k], ddof=1)) for k in PHENOTYPES})
        else:
            row.update({f"{k}_sd": float("nan") for k in PHENOTYPES})
        rows.append(row)
    return pd.DataFrame(rows)


def group_summary(patients: pd.DataFrame) -> dict:
    """Per pathology group: n, mean Dice per class, MAE and bias of each phenotype; and the
    spread (max - min over groups) of each."""
    frame = patients.copy()
    for k in PHENOTYPES:
        frame[f"abs_{k}"] = frame[f"err_{k}"].abs()
    dice_cols = [f"dice_{k}" for k in KEYS]
    mae_cols = [f"abs_{k}" for k in PHENOTYPES]
    bias_cols = [f"err_{k}" for k in PHENOTYPES]
    table = by_group(frame, "group", [*dice_cols, *mae_cols, *bias_cols])
    table = table.rename(columns={f"abs_{k}": f"mae_{k}" for k in PHENOTYPES})
    table = table.rename(columns={f"err_{k}": f"bias_{k}" for k in PHENOTYPES})
    cols = [c for c in table.columns if c not in ("group", "n")]
    return {
        "table": table.round(4).to_dict("records"),
        "spread": {k: round(v, 4) for k, v in spread(table, cols).items()},
    }


def worst_patients(patients: pd.DataFrame, k: int) -> list[dict]:
    """The ``k`` patients with the largest mean of |error| / cohort MAE over the phenotypes,
    each with its three most excessive phenotypes (error and ratio to the MAE) as ``why``."""
    mae = {p: patients[f"err_{p}"].abs().mean() for p in PHENOTYPES}
    ratios = pd.DataFrame(
        {p: patients[f"err_{p}"].abs() / mae[p] for p in PHENOTYPES if mae[p] > 0}
    )
    score = ratios.mean(axis=1)
    out = []
    for i in score.sort_values(ascending=False).index[:k]:
        r = patients.loc[i]
        top = ratios.loc[i].sort_values(ascending=False).index[:3]
        why = ", ".join(
            f"{p} {r[f'err_{p}']:+.1f} {UNITS.get(p, 'mL')} ({ratios.loc[i, p]:.1f}x MAE)"
            for p in top
        )
        out.append(
            {
                "patient": r.patient,
                "group": r.group,
                "score": round(float(score[i]), 3),
                "dice_mean": round(float(r.dice_mean), 4),
                "why": why,
            }
        )
    return out


def worst_montage(path: Path, title: str, why: str, arrays: dict, pid: str) -> Path:
    """Rows: the three slices of lowest mean Dice at ED, then at ES; columns: the image, the
    expert contours, the model's (LV cavity red, myocardium green, RV blue)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {1: "red", 2: "lime", 3: "dodgerblue"}
    panels = []
    for phase in ("ED", "ES"):
        image, expert, model = arrays[(pid, phase)]
        scores = []
        for z in range(image.shape[0]):
            if not (expert[z].any() or model[z].any()):
                continue
            d = [
                _dice2d(expert[z] == c, model[z] == c)
                for c in (1, 2, 3)
                if (expert[z] == c).any() or (model[z] == c).any()
            ]
            scores.append((float(np.mean(d)), z))
        for dice, z in sorted(scores)[:3]:
            panels.append((phase, z, dice, image[z], expert[z], model[z]))
    fig, axes = plt.subplots(len(panels), 3, figsize=(7.5, 2.5 * len(panels)), squeeze=False)
    for row, (phase, z, dice, img, exp, mod) in zip(axes, panels, strict=True):
        xs, ys = np.nonzero((exp > 0) | (mod > 0))  # zoom on the heart, 25 px margin
        box = (
            slice(max(0, xs.min() - 25), xs.max() + 26),
            slice(max(0, ys.min() - 25), ys.max() + 26),
        )
        img, exp, mod = img[box], exp[box], mod[box]
        for ax, lab, name in zip(row, (None, exp, mod), ("image", "expert", "model"), strict=True):
            ax.imshow(img, cmap="gray")
            if lab is not None:
                for c, colour in colours.items():
                    if (lab == c).any():
                        ax.contour(lab == c, levels=[0.5], colors=colour, linewidths=0.8)
            ax.set_title(f"{phase} slice {z} {name}" + (f" (Dice {dice:.2f})" if lab is mod else ""),
                         fontsize=8)  # fmt: skip
            ax.axis("off")
    fig.suptitle(f"{title}: {why}", fontsize=8, wrap=True)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _dice2d(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


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
        # signed volume error per class over all frames, % of the truth: a border that sits
        # systematically inside or outside the truth's shows here, not in Dice
        bias = {
            f"{k}_volume_pct": 100.0
            * (int((pred == c).sum()) / max(1, int((truth == c).sum())) - 1)
            for c, k in enumerate(KEYS, start=1)
        }
        rows.append({"eid": str(row.eid), **dice_per_class(pred, truth), **bias})
    df = pd.DataFrame(rows)
    return {
        "n_subjects": len(df),
        "dice_all_frames": {k: float(df[k].mean()) for k in KEYS},
        "volume_error_pct_mean": {k: float(df[f"{k}_volume_pct"].mean()) for k in KEYS},
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
    ap.add_argument("--worst", type=int, default=4, help="ACDC patients named and drawn")
    ap.add_argument("--no-synthetic", action="store_true", help="ACDC only")
    ap.add_argument(
        "--own-reference",
        action="store_true",
        help="ablation: a network with a reference channel gets each ACDC frame as its own "
        "first frame (no phase cue)",
    )
    ap.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="an earlier output of this benchmark (e.g. the shipped model's): print the paired "
        "per-patient comparison of benchmarks/compare_accuracy.py against it",
    )
    args = ap.parse_args()
    seg = Segmenter(
        args.checkpoint,
        args.device,
        compute=ComputeOptions(precision=args.precision),
        passes=PassOptions(tta=False, flip_ensemble=args.flip_ensemble),
    )
    result = {
        "checkpoint": str(seg.checkpoint),
        "flip_ensemble": args.flip_ensemble,
        "precision": seg.precision,
        "checkpoint_sha256": seg.sha256,
        "own_reference": args.own_reference,
        "note": "ACDC in-plane spacing estimated from reference.csv voxel volume (see MODEL_CARD)",
    }
    t0 = time.perf_counter()
    if Path(args.acdc).is_dir():
        result["acdc"] = acdc(
            seg,
            Path(args.acdc),
            acdc_patient_ids(args.patients),
            args.worst,
            Path(args.out).parent / "acdc_worst",
            args.own_reference,
        )
        print("ACDC Dice ED", result["acdc"]["dice_ED"], "ES", result["acdc"]["dice_ES"])
        print("ACDC errors", {k: round(v["mean"], 2) for k, v in result["acdc"]["errors"].items()})
        for w in result["acdc"]["worst"]:
            print("worst", w["patient"], w["group"], w["why"])
    if args.no_synthetic:
        return _write(result, args, seg, t0)
    cohort = Path(args.synthetic) if args.synthetic else None
    if cohort is None:
        from cardiopheno.synth.cohort import generate_cohort

        cohort = Path(tempfile.mkdtemp()) / "synthetic_seed2"
        generate_cohort(cohort, args.n_synthetic, seed=2, fault_fraction=0.0, n_jobs=1)
    result["synthetic"] = synthetic(seg, cohort)
    print("synthetic Dice", result["synthetic"]["dice_all_frames"])
    return _write(result, args, seg, t0)


def _write(result: dict, args, seg: Segmenter, t0: float) -> int:
    result["seconds"] = time.perf_counter() - t0
    result["checkpoint_sha256"] = file_sha256(seg.checkpoint)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    if args.compare and "acdc" in result:
        from compare_accuracy import compare, markdown  # benchmarks/, this script's folder

        paired = compare(json.loads(args.compare.read_text()), result)
        print(markdown(paired, args.compare.stem, out.stem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
