"""Atrial phenotypes against the synthetic heart's truth, in three steps, so each error has a
cause: (1) the truth labels' atrial areas against the analytic cut of each view's plane (the
renderer), (2) the area-length method on the truth labels against the analytic 3D atria (the
method's own error), (3) the shipped long-axis models' segmentations against the truth labels
(Dice) and their phenotypes against the truth (the pipeline), with seconds per subject.

    python benchmarks/atrial_truth.py --cohort DIR            # an existing synthetic cohort
    python benchmarks/atrial_truth.py --n 40 --seed 202       # generate one (held out: seed 202)

Writes results/benchmarks/atrial_truth.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cardiopheno.io.tables import read_any
from cardiopheno.phenotypes import atrial_function as af
from cardiopheno.phenotypes.registry import context_from_files
from cardiopheno.segment.infer import Segmenter, dice
from cardiopheno.synth.cohort import generate_cohort

IDPS = ("LAV_max", "LAV_min", "LASV", "LAEF", "RAV_max", "RAV_min", "RASV", "RAEF")
VIEWS = ("la_2ch", "la_4ch")


def errors(est: pd.DataFrame, truth: pd.DataFrame) -> dict:
    out = {}
    for idp in IDPS:
        d = (est[idp] - truth.loc[est.index, idp]).dropna()
        if len(d):
            out[idp] = {"mae": float(d.abs().mean()), "bias": float(d.mean()), "n": len(d)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cohort", default=None, help="existing synthetic cohort folder")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=202)
    ap.add_argument("--no-model", action="store_true", help="skip step 3")
    ap.add_argument("--out", default="results/benchmarks/atrial_truth.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.cohort:
        root = Path(args.cohort)
    else:
        root = Path(tempfile.mkdtemp(prefix="atrial_truth_"))
        generate_cohort(root, args.n, args.seed, fault_fraction=0.0)
    manifest = read_any(root / "manifest.csv")
    truth = read_any(root / "truth" / "idps.parquet").set_index("eid")
    curves = read_any(root / "truth" / "atrial_curves.parquet")
    result: dict = {
        "cohort": str(root),
        "n_subjects": len(manifest),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
    }

    # (1) rendering: voxel areas against the analytic cut of the plane
    area = {}
    for tag in ("LA_2ch", "LA_4ch", "RA_4ch"):
        rel = curves[f"{tag}_area_mm2"] / curves[f"{tag}_area_mm2_analytic"] - 1.0
        area[tag] = {
            "median_abs_rel": float(rel.abs().median()),
            "max_abs_rel": float(rel.abs().max()),
        }
    result["truth_label_area_vs_analytic"] = area

    # (2) the area-length method on the truth labels
    rows = {}
    lab = root / "truth" / "labels"
    for eid in manifest["eid"].astype(str):
        ctx = context_from_files(
            lab / f"{eid}.nii.gz",
            eid=eid,
            views={v: lab / f"{eid}_{v}.nii.gz" for v in VIEWS},
        )
        rows[eid] = af.compute(ctx)
    method = pd.DataFrame.from_dict(rows, orient="index")
    result["area_length_on_truth_labels_vs_analytic"] = errors(method, truth)

    # (3) the models
    if not args.no_model:
        segs = {v: Segmenter(view=v, device="cpu", threads=2) for v in VIEWS}
        model_rows, dices, seconds = {}, {v: {} for v in VIEWS}, []
        with tempfile.TemporaryDirectory() as tmp:
            for rec in manifest.itertuples(index=False):
                eid = str(rec.eid)
                t0 = time.perf_counter()
                paths = {}
                for v in VIEWS:
                    paths[v] = Path(tmp) / f"{eid}_{v}.nii.gz"
                    segs[v].segment_file(root / getattr(rec, v), paths[v])
                ctx = context_from_files(lab / f"{eid}.nii.gz", eid=eid, views=paths)
                model_rows[eid] = af.compute(ctx)
                seconds.append(time.perf_counter() - t0)
                for v in VIEWS:
                    pred = ctx.view(v).labels
                    ref = (
                        context_from_files(
                            lab / f"{eid}.nii.gz", views={v: lab / f"{eid}_{v}.nii.gz"}
                        )
                        .view(v)
                        .labels
                    )
                    for c, key in segs[v].view.keys.items():
                        dices[v].setdefault(key, []).append(dice(pred == c, ref == c))
        model = pd.DataFrame.from_dict(model_rows, orient="index")
        result["model_vs_truth"] = errors(model, truth)
        result["model_dice"] = {
            v: {k: float(np.mean(d)) for k, d in per.items()} for v, per in dices.items()
        }
        result["seconds_per_subject_both_views"] = float(np.median(seconds))
        result["checkpoints"] = {v: str(s.checkpoint) for v, s in segs.items()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
