"""Speed of phenotype extraction from segmentations, all families, on one core.

A 10-slice x 50-frame cine (UK Biobank-like 192 x 208 matrix, 1.8 mm pixels, 8 mm slices) is
built from the phantom in cardiopheno.phenotypes._phantom; the benchmark times (a) the
computation from an in-memory label map and (b) the whole per-subject path of the workflow,
reading the gzipped NIfTI segmentation from disk. Target: >= 20 subjects/s per core.

    .venv/bin/python benchmarks/phenotype_speed.py [--repeats 40]

Writes results/benchmarks/phenotype_speed.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import cardiopheno
from cardiopheno.io.nifti import save_nifti
from cardiopheno.phenotypes import (
    SubjectContext,
    compute_phenotypes,
    context_from_files,
    resolve_families,
)
from cardiopheno.phenotypes._phantom import make_phantom

OUT = Path("results/benchmarks/phenotype_speed.json")


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def _rate(fn, repeats: int) -> dict:
    fn()  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times = np.array(times)
    return {
        "median_ms": round(1000 * float(np.median(times)), 2),
        "p90_ms": round(1000 * float(np.percentile(times, 90)), 2),
        "subjects_per_s": round(1.0 / float(np.median(times)), 1),
        "repeats": repeats,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=40)
    args = ap.parse_args()
    with contextlib.suppress(AttributeError, OSError):  # one core: the target is per core
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    families = resolve_families()
    p = make_phantom(shape_xy=(192, 208), n_slices=10, n_frames=50, septal_extra_mm=3.0)
    covariates = {"height_cm": 172.0, "weight_kg": 78.0}

    def in_memory():
        ctx = SubjectContext(p.labels, p.spacing, p.frame_interval_ms, covariates)
        return compute_phenotypes(ctx, families)

    with tempfile.TemporaryDirectory() as tmp:
        seg = Path(tmp) / "seg_sa.nii.gz"
        save_nifti(seg, p.labels, np.diag([*p.spacing, 1.0]), zooms=(*p.spacing, 20.0))

        def from_file():
            ctx = context_from_files(seg, None, covariates)
            return compute_phenotypes(ctx, families)

        result = {
            "benchmark": "phenotype_speed",
            "families": [f.name for f in families],
            "n_outputs": len(in_memory()),
            "shape": list(p.labels.shape),
            "spacing_mm": list(p.spacing),
            "in_memory": _rate(in_memory, args.repeats),
            "from_nifti_gz": _rate(from_file, args.repeats),
            "target_subjects_per_s_per_core": 20,
            "cores": 1,
            "machine": _cpu_name(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cardiopheno": cardiopheno.__version__,
        }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
