"""Seconds per subject of the strain family on a UK Biobank-sized cine (10 slices x 50 frames,
200 x 200 at ~1.8 mm), three slices (default) and every slice.

A synthetic subject is padded to 200 x 200 and resampled to 50 frames (nearest frame), so the
tracking sees a realistic heart in a UK Biobank-sized field of view; the crop to the LV makes the
field of view matter little. Writes results/benchmarks/strain_speed.json.

    .venv/bin/python benchmarks/strain_speed.py --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default="results/benchmarks/strain_speed.json")
    args = ap.parse_args()
    img, lab, s = ukbb_sized()
    fams = resolve_families(["strain"])
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other jobs",
        "shape": list(img.shape),
        "pixel_mm": float(s.zooms[0]),
    }
    runs = {
        "three": {"slices": "three"},
        "all": {"slices": "all"},
        # fewer steps and a tighter crop: timing only (accuracy not validated)
        "three_fast": {"slices": "three", "iterations": [30, 30, 20], "margin_mm": 10.0},
    }
    for mode, opts in runs.items():
        secs = []
        for _ in range(args.repeats):
            ctx = SubjectContext(lab, s.zooms[:3], s.zooms[3], image=img, affine=s.affine,
                                 options={"strain": opts})  # fmt: skip
            t0 = time.perf_counter()
            compute_phenotypes(ctx, fams)
            secs.append(time.perf_counter() - t0)
        result[f"seconds_{mode}_slices"] = secs
        print(mode, [round(x, 2) for x in secs], flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
