"""Subgroup audit against ground truth: segmentation Dice, phenotype error and QC failure rate by
sex and age band (synthetic cohort) and by pathology group (ACDC), with the spread between groups.

    python benchmarks/subgroup_audit.py --synthetic DIR
        [--acdc-json results/benchmarks/segment_accuracy_acdc.json]
        [--out results/benchmarks/subgroup_audit.json]

Synthetic: ``_synthetic_eval.py`` (the workflow's segmentation, phenotypes and QC; cached, so
running benchmarks/uncertainty.py first on the same cohort segments it once). Age bands of 10
years. ACDC: the per-patient rows of ``segment_accuracy.py`` (validation patients, 4 per group;
ACDC has no sex or age in this export). The spread is max - min over groups
(``cardiopheno.stats.subgroups``); groups of a few subjects make it noisy, so ``n`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from _synthetic_eval import PHENOTYPES, evaluate_cohort  # noqa: E402

from cardiopheno.segment.infer import PassOptions, Segmenter  # noqa: E402
from cardiopheno.stats.subgroups import age_bands, by_group, sex_groups, spread  # noqa: E402

DICE = ("dice_lv", "dice_myo", "dice_rv")


def audit(frame: pd.DataFrame, group: str, qc: bool = True) -> dict:
    """Per group: n, mean Dice per class, MAE of each phenotype, QC failure rate (%); spread."""
    f = frame.copy()
    cols = list(DICE)
    for p in PHENOTYPES:
        f[f"mae_{p}"] = f[f"err_{p}"].abs()
        cols.append(f"mae_{p}")
    if qc:
        f["qc_fail_pct"] = 100.0 * (~f["qc_pass"].astype(bool))
        cols.append("qc_fail_pct")
    t = by_group(f, group, cols)
    return {
        "table": t.round(4).to_dict("records"),
        "spread": {k: round(v, 4) for k, v in spread(t, cols).items()},
    }


def markdown(name: str, res: dict, group: str) -> str:
    cols = [c for c in res["table"][0] if c not in (group, "n")]
    short = [c.replace("dice_", "Dice ").replace("mae_", "").replace("qc_fail_pct", "QC fail %")
             for c in cols]  # fmt: skip
    lines = [f"{name}", "", f"| {group} | n | " + " | ".join(short) + " |"]
    lines.append("| --- " * (len(cols) + 2) + "|")
    for r in res["table"]:
        cells = [f"{r[c]:.3f}" if c.startswith("dice") else f"{r[c]:.1f}" for c in cols]
        lines.append(f"| {r[group]} | {r['n']} | " + " | ".join(cells) + " |")
    gap = [f"{res['spread'][c]:.3f}" if c.startswith("dice") else f"{res['spread'][c]:.1f}"
           for c in cols]  # fmt: skip
    lines.append("| **spread** | | " + " | ".join(gap) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", required=True)
    ap.add_argument(
        "--acdc-json", default=str(REPO / "results/benchmarks/segment_accuracy_acdc.json")
    )
    ap.add_argument("--out", default=str(REPO / "results/benchmarks/subgroup_audit.json"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    seg = Segmenter(None, "auto", passes=PassOptions(tta=True, flip_ensemble=1))
    out_dir = Path(args.out).parent
    synth = evaluate_cohort(Path(args.synthetic), seg, out_dir / "cache")
    synth["sex_group"] = sex_groups(synth["sex"])
    synth["age_band"] = age_bands(synth["age"])
    result = {
        "checkpoint_sha256": seg.sha256,
        "synthetic_cohort": str(args.synthetic),
        "synthetic_n": len(synth),
        "synthetic_by_sex": audit(synth, "sex_group"),
        "synthetic_by_age_band": audit(synth, "age_band"),
    }
    text = [
        markdown("Synthetic by sex", result["synthetic_by_sex"], "sex_group"),
        markdown("Synthetic by age band", result["synthetic_by_age_band"], "age_band"),
    ]
    if "pathology" in synth and synth["pathology"].astype(str).ne("").any():
        result["synthetic_by_pathology"] = audit(synth, "pathology")
        text.append(
            markdown("Synthetic by pathology", result["synthetic_by_pathology"], "pathology")
        )
    acdc_json = Path(args.acdc_json)
    if acdc_json.is_file():
        per_patient = pd.DataFrame(json.loads(acdc_json.read_text())["acdc"]["per_patient"])
        result["acdc_by_group"] = audit(per_patient, "group", qc=False)
        text.append(markdown("ACDC by pathology group", result["acdc_by_group"], "group"))
    else:
        print(f"{acdc_json} absent: run benchmarks/segment_accuracy.py first for the ACDC part")
    result["seconds"] = time.perf_counter() - t0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print("\n\n".join(text))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
