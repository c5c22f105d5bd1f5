"""Paired comparison of two segmentation checkpoints' ACDC accuracy, patient by patient.

    python benchmarks/compare_accuracy.py BASE.json NEW.json [--out compare.json] [--seed 0]

BASE.json and NEW.json are outputs of ``benchmarks/segment_accuracy.py`` on the same patients.
On 20 validation patients one heart can move a mean absolute error by 1-2 mL, so "NEW has the
lower MAE" is not evidence that NEW is better. For each phenotype error (LVEDV ... RVEF) and each
Dice class this gives both models' means, the paired difference (NEW - BASE of |error|, or of
Dice), its 95 % bootstrap interval over patients (``scipy.stats.bootstrap``, paired resampling,
seeded), the Wilcoxon signed-rank p-value (``scipy.stats.wilcoxon``), how many patients NEW is
better and worse on, and the patient whose change is largest (with fewer than 6 patients only
the means and counts). Prints a Markdown table.
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
MIN_PATIENTS = 6  # fewer: no interval and no test, only the means and the counts


def _per_patient(result: dict, source: str) -> dict[str, dict]:
    try:
        rows = result["acdc"]["per_patient"]
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"{source}: no acdc.per_patient (run segment_accuracy.py with ACDC)"
        ) from exc
    return {row["patient"]: row for row in rows}


def _paired(base: np.ndarray, new: np.ndarray, seed: int) -> dict:
    """Summary of ``new - base`` where smaller is better (|errors|); the caller flips Dice."""
    diff = new - base
    out = {
        "base": float(base.mean()),
        "new": float(new.mean()),
        "difference": float(diff.mean()),
        "better": int((diff < 0).sum()),
        "worse": int((diff > 0).sum()),
    }
    if np.ptp(diff) == 0:  # identical models, or one patient: no interval to draw
        out.update(ci_low=out["difference"], ci_high=out["difference"], wilcoxon_p=1.0)
        return out
    if len(diff) < MIN_PATIENTS:  # a percentile interval of a handful of values means nothing
        out.update(ci_low=None, ci_high=None, wilcoxon_p=None)
        return out
    boot = stats.bootstrap(
        (base, new),
        lambda b, n, axis=-1: np.mean(n - b, axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=9999,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    out["ci_low"] = float(boot.confidence_interval.low)
    out["ci_high"] = float(boot.confidence_interval.high)
    out["wilcoxon_p"] = float(stats.wilcoxon(new, base).pvalue)
    return out


def compare(base_result: dict, new_result: dict, seed: int = 0) -> dict:
    """Paired per-patient comparison of two ``segment_accuracy.py`` results (see module doc)."""
    base = _per_patient(base_result, "base")
    new = _per_patient(new_result, "new")
    if set(base) != set(new):
        only = sorted(set(base) ^ set(new))
        raise ValueError(f"the two results cover different patients (not in both: {only})")
    patients = sorted(base)
    rows = {}
    for name in PHENOTYPES:
        b = np.array([abs(base[p][f"err_{name}"]) for p in patients])
        n = np.array([abs(new[p][f"err_{name}"]) for p in patients])
        row = _paired(b, n, seed)
        row["largest_change"] = patients[int(np.argmax(np.abs(n - b)))]
        rows[f"{name} |error|"] = row
    for cls in DICE:
        # negated so that "better" and the interval read the same way as for the errors
        b = -np.array([base[p][f"dice_{cls}"] for p in patients])
        n = -np.array([new[p][f"dice_{cls}"] for p in patients])
        row = _paired(b, n, seed)
        for key in ("base", "new", "difference", "ci_low", "ci_high"):
            row[key] = None if row[key] is None else -row[key]
        row["ci_low"], row["ci_high"] = row["ci_high"], row["ci_low"]
        row["largest_change"] = patients[int(np.argmax(np.abs(n - b)))]
        rows[f"Dice {cls}"] = row
    return {"n_patients": len(patients), "patients": patients, "rows": rows}


def markdown(result: dict, base_name: str, new_name: str) -> str:
    lines = [
        f"| figure | {base_name} | {new_name} | difference (95 % CI) | Wilcoxon p "
        "| better / worse | largest change |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in result["rows"].items():
        fmt = "%.3f" if name.startswith("Dice") else "%.1f"
        diff = fmt % r["difference"]
        p = "n/a"
        if r["ci_low"] is not None:
            diff += f" ({fmt % r['ci_low']} to {fmt % r['ci_high']})"
            p = f"{r['wilcoxon_p']:.2f}"
        lines.append(
            f"| {name} | {fmt % r['base']} | {fmt % r['new']} | {diff} | {p} "
            f"| {r['better']} / {r['worse']} | {r['largest_change']} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", type=Path, help="segment_accuracy.py JSON of the reference model")
    ap.add_argument("new", type=Path, help="segment_accuracy.py JSON of the candidate")
    ap.add_argument("--out", type=Path, default=None, help="write the comparison as JSON")
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = ap.parse_args()
    result = compare(json.loads(args.base.read_text()), json.loads(args.new.read_text()), args.seed)
    result.update(base=str(args.base), new=str(args.new))
    print(markdown(result, args.base.stem, args.new.stem))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
