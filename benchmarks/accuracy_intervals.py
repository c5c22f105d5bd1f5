"""95 % bootstrap intervals over patients of one model's ACDC figures (Dice and MAE).

    python benchmarks/accuracy_intervals.py results/benchmarks/segment_accuracy.json [--seed 0]

Reads the per-patient records of ``benchmarks/segment_accuracy.py`` and prints, for each Dice
class and each phenotype's absolute error, the mean over patients with its percentile bootstrap
interval (``scipy.stats.bootstrap``, resampling patients, seeded). On 20 patients the interval of
an MAE is several units wide: read single figures, and differences between candidates scored on
the same patients, with that in mind.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

PHENOTYPES = ("LVEDV", "LVESV", "LVEF", "LVM", "RVEDV", "RVESV", "RVEF")
DICE = ("lv", "myo", "rv")


def intervals(rows: list[dict], seed: int = 0) -> dict[str, list[float]]:
    """Mean and 95 % bootstrap interval of each Dice class and each phenotype's |error|."""
    columns = {f"dice_{k}": [r[f"dice_{k}"] for r in rows] for k in DICE}
    columns |= {f"{p}_mae": [abs(r[f"err_{p}"]) for r in rows] for p in PHENOTYPES}
    out = {}
    for name, values in columns.items():
        x = np.asarray(values, float)
        ci = stats.bootstrap(
            (x,), np.mean, confidence_level=0.95, method="percentile", random_state=seed
        ).confidence_interval
        out[name] = [float(x.mean()), float(ci.low), float(ci.high)]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("result", type=Path, help="output of benchmarks/segment_accuracy.py")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        rows = json.loads(args.result.read_text())["acdc"]["per_patient"]
    except (OSError, KeyError, ValueError) as exc:
        print(f"{args.result}: no acdc.per_patient ({exc})", file=sys.stderr)
        return 2
    print(f"{len(rows)} patients; mean [95 % bootstrap interval over patients]")
    for name, (mean, lo, hi) in intervals(rows, args.seed).items():
        digits = 3 if name.startswith("dice") else 1
        print(f"| {name} | {mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}] |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
