"""Does the per-subject phenotype uncertainty (``<IDP>_sd``) predict the subject's error?

    python benchmarks/uncertainty.py --synthetic DIR [--acdc-json results/benchmarks/segment_accuracy_acdc.json]
        [--top 3] [--out results/benchmarks/uncertainty.json]

Synthetic: a cohort written by ``cardiopheno synth`` (truth in ``truth/idps.parquet``), segmented
as the workflow does (``_synthetic_eval.py``: TTA on, flip_ensemble 1). ACDC: the per-patient
errors and uncertainties of ``segment_accuracy.py`` (the 20 validation patients; its JSON, or it
is run here when ``--acdc-json`` is absent). For each of LVEDV, LVESV, LVEF, LVM, RVEDV, RVESV,
RVEF: Spearman's rank correlation of the uncertainty with the absolute error, and the mean
absolute error of the ``--top`` most uncertain subjects against the rest
(``cardiopheno.segment.uncertainty.error_prediction``).
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
from cardiopheno.segment.uncertainty import error_prediction  # noqa: E402


def analyse(frame: pd.DataFrame, top: int) -> dict:
    """error_prediction per phenotype of a frame with ``err_<IDP>`` and ``<IDP>_sd``."""
    out = {}
    for p in PHENOTYPES:
        res = error_prediction(frame[f"{p}_sd"], frame[f"err_{p}"].abs(), top=top)
        res["median_sd"] = float(frame[f"{p}_sd"].median())
        res["mae_all"] = float(frame[f"err_{p}"].abs().mean())
        out[p] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}
    return out


def table(result: dict) -> str:
    lines = ["| data | IDP | n | median SD | MAE | Spearman rho (p) | MAE top k / rest |"]
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for source, per in result.items():
        if not isinstance(per, dict) or "LVEDV" not in per:
            continue
        for p, r in per.items():
            lines.append(
                f"| {source} | {p} | {r['n']} | {r['median_sd']:.2f} | {r['mae_all']:.2f} | "
                f"{r['spearman_rho']:+.2f} ({r['spearman_p']:.2f}) | "
                f"{r['mae_top']:.2f} / {r['mae_rest']:.2f} (k={r['top_k']}) |"
            )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", required=True, help="synthetic cohort folder")
    ap.add_argument(
        "--acdc-json", default=str(REPO / "results/benchmarks/segment_accuracy_acdc.json")
    )
    ap.add_argument("--acdc", default=str(REPO.parent / "shared/data/acdc"))
    ap.add_argument("--top", type=int, default=3, help="most uncertain subjects compared")
    ap.add_argument("--out", default=str(REPO / "results/benchmarks/uncertainty.json"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    seg = Segmenter(None, "auto", passes=PassOptions(tta=True, flip_ensemble=1))
    out_dir = Path(args.out).parent
    synth = evaluate_cohort(Path(args.synthetic), seg, out_dir / "cache")
    result = {
        "checkpoint_sha256": seg.sha256,
        "passes": "flip_ensemble 1 (plain + 180-degree rotation: 2 passes)",
        "top": args.top,
        "synthetic_cohort": str(args.synthetic),
        "synthetic": analyse(synth, args.top),
    }
    acdc_json = Path(args.acdc_json)
    if not acdc_json.is_file() and Path(args.acdc).is_dir():
        from segment_accuracy import acdc

        from cardiopheno.segment.data import acdc_patient_ids

        patients = acdc_patient_ids("13-16,33-36,53-56,73-76,93-96")
        acdc_result = acdc(
            Segmenter(None, "auto", passes=PassOptions(tta=False)), Path(args.acdc), patients, 0
        )
    elif acdc_json.is_file():
        acdc_result = json.loads(acdc_json.read_text())["acdc"]
    else:
        acdc_result = None
    if acdc_result is not None:
        result["acdc"] = analyse(pd.DataFrame(acdc_result["per_patient"]), args.top)
    result["seconds"] = time.perf_counter() - t0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(table(result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
