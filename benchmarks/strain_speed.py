"""Seconds per subject of the strain family on a UK Biobank-sized cine (10 slices x 50 frames,
200 x 200 at ~1.8 mm), three slices (default) and optionally every slice; with
``--baseline-ref`` an older version of the tracking is timed interleaved with the current one.

A synthetic subject is padded to 200 x 200 and resampled to 50 frames (nearest frame), so the
tracking sees a realistic heart in a UK Biobank-sized field of view; the crop to the LV makes the
field of view matter little. Writes results/benchmarks/strain_speed.json.

    .venv/bin/python benchmarks/strain_speed.py --repeats 3 --baseline-ref 75c6015
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

import cardiopheno.phenotypes.strain as strain_mod
from cardiopheno.phenotypes import SubjectContext, compute_phenotypes, resolve_families
from cardiopheno.synth.imaging import simulate_subject
from cardiopheno.synth.population import sample_population


def ukbb_sized(seed: int = 11):
    pop = sample_population(1, seed)
    s = simulate_subject(pop.iloc[0], seed, 0, hypokinesis=False)
    idx = np.round(np.linspace(0, s.image.shape[3] - 1, 50)).astype(int)
    img, lab = s.image[..., idx], s.labels[..., idx]
    z = min(img.shape[2], 10)
    img, lab = img[:, :, :z], lab[:, :, :z]
    pad = [(0, max(0, 200 - img.shape[0])), (0, max(0, 200 - img.shape[1])), (0, 0), (0, 0)]
    return np.pad(img, pad), np.pad(lab, pad), s


def baseline_tracker(ref: str):
    """``track_slices`` of ``src/cardiopheno/motion/register.py`` at git ``ref`` (with that
    version's default settings), loaded as a module beside the current one. Until 9991d8a the
    file held the whole registration; since then it imports ``motion.bspline``, ``level`` and
    ``sliding``, which come from the current tree, so a later ref times its loop only."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "show", f"{ref}:src/cardiopheno/motion/register.py"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    module = types.ModuleType("register_baseline")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"register.py@{ref}", "exec"), module.__dict__)

    def track(image, labels, slices, ed_frame, spacing=(1.0, 1.0), settings=None):
        return module.track_slices(image, labels, slices, ed_frame, spacing)

    return track


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--baseline-ref",
        default="",
        help="git ref whose motion/register.py (with its defaults) is timed interleaved with "
        "the current code, three slices, for a speed ratio on the same (loaded) machine",
    )
    ap.add_argument("--all-slices", action="store_true", help="also time every slice")
    ap.add_argument("--out", default="results/benchmarks/strain_speed.json")
    args = ap.parse_args()
    img, lab, s = ukbb_sized()
    fams = resolve_families(["strain"])
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other jobs",
        "torch_threads": 1,
        "shape": list(img.shape),
        "pixel_mm": float(s.zooms[0]),
        "load_average_before": list(os.getloadavg()),
    }
    runs = {"three": {"slices": "three"}}
    if args.baseline_ref:
        runs[f"three_at_{args.baseline_ref}"] = {"slices": "three"}
        baseline = baseline_tracker(args.baseline_ref)
    if args.all_slices:
        runs["all"] = {"slices": "all"}
    secs: dict[str, list[float]] = {mode: [] for mode in runs}
    current = strain_mod.track_slices
    for _ in range(args.repeats):  # interleaved, so that load changes hit every row alike
        for mode, opts in runs.items():
            strain_mod.track_slices = baseline if "_at_" in mode else current
            ctx = SubjectContext(lab, s.zooms[:3], s.zooms[3], image=img, affine=s.affine,
                                 options={"strain": opts})  # fmt: skip
            t0 = time.perf_counter()
            compute_phenotypes(ctx, fams)
            secs[mode].append(time.perf_counter() - t0)
            print(mode, round(secs[mode][-1], 2), flush=True)
    strain_mod.track_slices = current
    for mode, values in secs.items():
        result[f"seconds_{mode}_slices"] = values
    if args.baseline_ref:
        ratios = np.array(secs[f"three_at_{args.baseline_ref}"]) / np.array(secs["three"])
        result["speedup_vs_baseline_per_repeat"] = ratios.tolist()
        result["speedup_vs_baseline_median"] = float(np.median(ratios))
    result["load_average_after"] = list(os.getloadavg())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
