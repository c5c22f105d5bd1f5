"""Seconds per subject of the shipped view models (segment_file: read, segment, write), and
whether two versions of the code give the same labels.

    python benchmarks/view_speed.py --cohort DIR --labels-out A      # this version
    PYTHONPATH=OLD/src python benchmarks/view_speed.py --cohort DIR --labels-out B --tag before
    python benchmarks/view_speed.py --cohort DIR --compare B        # + Dice against B's labels

Run the versions one after the other on the same subjects and threads, and quote the load
average each run records (the shared VM's load moves the seconds, not the labels). Writes
results/benchmarks/view_speed_<tag>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from cardiopheno.io.manifest import load_manifest
from cardiopheno.io.nifti import load_cine
from cardiopheno.segment.infer import ComputeOptions, Segmenter, dice

VIEWS = ("la_2ch", "la_4ch", "ao")
ROOT = Path(__file__).resolve().parents[1]


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cohort", required=True)
    ap.add_argument("--views", nargs="+", default=list(VIEWS), choices=VIEWS)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--subjects", type=int, default=0, help="first N subjects (0: all)")
    ap.add_argument("--labels-out", help="keep the label maps here (<eid>_<view>.nii.gz)")
    ap.add_argument("--compare", help="a --labels-out folder of another run: Dice against it")
    ap.add_argument("--tag", default="after")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.cohort)
    manifest = load_manifest(root / "manifest.csv", check_files=False)
    if args.subjects:
        manifest = manifest.head(args.subjects)
    out_dir = Path(args.labels_out or ROOT / "results" / "benchmarks" / "view_speed_labels")
    out_dir.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    result: dict = {"views": {}}
    for view in args.views:
        seg = Segmenter(view=view, device="cpu", compute=ComputeOptions(threads=args.threads))
        seconds, frames, dices, identical = [], [], {}, 0
        for rec in manifest.itertuples(index=False):
            eid, dest = str(rec.eid), out_dir / f"{rec.eid}_{view}.nii.gz"
            t0 = time.perf_counter()
            seg.segment_file(getattr(rec, view), dest)
            seconds.append(time.perf_counter() - t0)
            labels = load_cine(dest, dtype=np.uint8).data
            frames.append(labels.shape[3])
            if args.compare:
                other = load_cine(Path(args.compare) / f"{eid}_{view}.nii.gz", dtype=np.uint8).data
                identical += int(np.array_equal(labels, other))
                for c, key in seg.view.keys.items():
                    dices.setdefault(key, []).append(dice(labels == c, other == c))
        result["views"][view] = {
            "seconds_median": float(np.median(seconds)),
            "seconds_mean": float(np.mean(seconds)),
            "frames_median": float(np.median(frames)),
            "frames_per_second": float(np.sum(frames) / np.sum(seconds)),
            "flip_ensemble": len(seg.flips),
        }
        if args.compare:
            result["views"][view]["vs_compare"] = {
                "identical_subjects": identical,
                "dice_min": {k: float(np.min(v)) for k, v in dices.items()},
            }
    result.update(
        {
            "tag": args.tag,
            "commit": _commit(),
            "cohort": str(root),
            "n_subjects": len(manifest),
            "threads": args.threads,
            "machine": f"{platform.machine()} ({platform.processor() or 'cpu'}), "
            f"{os.cpu_count()} cores",
            "load_average_start_end": [load_start[0], os.getloadavg()[0]],
            "compare": args.compare or "",
        }
    )
    out = ROOT / "results" / "benchmarks" / f"view_speed_{args.tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
