"""Sunnybrook expert reference: DICOM -> NIfTI, expert contours -> label maps, expert LV volumes.

Writes results/benchmarks/sunnybrook_reference.json and, under results/benchmarks/sunnybrook/, a
small real cohort with provided segmentations (manifest.csv: eid, sa, seg_sa) that the workflow
can run on unchanged. Needs ../shared/data/sunnybrook (the team's checkout only).

    .venv/bin/python benchmarks/sunnybrook_reference.py [--data ../shared/data/sunnybrook]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

import cardiopheno
from cardiopheno.io.nifti import load_cine, save_labels_like, save_nifti
from cardiopheno.io.provided import check_provided_segmentation
from cardiopheno.io.sunnybrook import expert_lv_volumes, load_sunnybrook_case, model_vs_expert

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sunnybrook"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks")
    parser.add_argument(
        "--model-seg",
        default=None,
        help="segmentations by the model, '{eid}' standing for the case, e.g. "
        "results/segment/b0000/{eid}/seg_sa.nii.gz (run the workflow on the written manifest "
        "without seg_sa); adds model-vs-expert LV volumes on the contoured slices",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    links = pd.read_csv(args.data / "link.csv", dtype=str)
    cohort = args.out / "sunnybrook"
    cases, manifest, comparisons = {}, [], {}
    for case_id, contour_id in zip(links["patient_id"], links["original_id"], strict=True):
        t0 = time.perf_counter()
        case = load_sunnybrook_case(
            args.data / "dicoms" / case_id, args.data / "contours" / contour_id
        )
        image = case.image
        sa, seg = cohort / case_id / "sa.nii.gz", cohort / case_id / "seg_sa.nii.gz"
        save_nifti(
            sa, image.data, image.affine, zooms=(*image.spacing, image.frame_interval_ms or 0.0)
        )
        save_labels_like(seg, case.labels, sa)
        problem = check_provided_segmentation(sa, seg)
        if problem:
            raise RuntimeError(problem)
        ref = expert_lv_volumes(case)
        ref.update(
            shape=list(image.data.shape),
            spacing_mm=list(image.spacing),
            frame_interval_ms=image.frame_interval_ms,
            labelled_slice_frame=[
                [int(k), int(t)] for k, t in zip(*case.labelled.nonzero(), strict=True)
            ],
            seconds=round(time.perf_counter() - t0, 2),
        )
        if args.model_seg:
            model = load_cine(args.model_seg.format(eid=case_id), dtype=np.uint8).data
            comparisons[case_id] = model_vs_expert(case, model)
        cases[case_id] = ref
        manifest.append(
            {"eid": case_id, "sa": f"{case_id}/sa.nii.gz", "seg_sa": f"{case_id}/seg_sa.nii.gz"}
        )
    pd.DataFrame(manifest).to_csv(cohort / "manifest.csv", index=False)
    out = {
        "description": (
            "Sunnybrook Cardiac Data (Radau et al. 2009, CC0): expert LV volumes from the contours on "
            "the contoured slices only; ED/ES = contoured frames of largest/smallest cavity volume; "
            "frame indices 0-based in TriggerTime order"
        ),
        "units": {
            "LVEDV": "mL",
            "LVESV": "mL",
            "LVSV": "mL",
            "LVEF": "%",
            "LVM": "g",
            "frame_interval_ms": "ms",
        },
        "rasterisation": "pixel centre inside polygon (skimage.draw.polygon), x=column y=row, tie-break +0.002/+0.001 px",
        "cardiopheno_version": cardiopheno.__version__,
        "machine": platform.platform(),
        "cases": cases,
        "model_vs_expert": comparisons or None,
    }
    path = args.out / "sunnybrook_reference.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    logging.info("wrote %s and %s", path, cohort / "manifest.csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
