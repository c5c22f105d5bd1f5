"""A tried ``ukbb`` lever, not shipped (issue #32): count the inner layer of the LV wall as cavity.

The issue's UK Biobank figures put our end-systolic LV cavity 30-36 % below the anchor's and our
myocardium 21-33 % above it, as if the anchor's smooth endocardium ran through the wall rather
than along the blood. Today's ``ukbb`` closing cannot move a border that is already smooth
(``benchmarks/convention.py``), so this moves the inner ``fraction`` of the local wall thickness
(per slice and frame: a myocardial pixel's distance to the cavity over that distance plus its
distance to whatever lies outside the LV, both from pixel edges; never within 2 mm of the
epicardium) to the cavity, after today's closing, and asks whether any fraction should ship.

The rule was written before any figure was computed (BENCHMARKS.md "Endocardial convention:
the inner layer"): the fraction is chosen by repeated 4-fold cross-validation over ACDC's
normal group against the pooled UK Biobank means, and ships only if it beats fraction 0 on at
least 80 % of the held-out folds, does not worsen the model's ED myocardium against Sunnybrook's
experts (whose protocol, like UK Biobank's, puts trabeculae and papillary muscles in the
cavity), and does not worsen the phantom's end-systolic cavity against its layer-free truth.
M&Ms-2 001's short axis is reported, never used for the choice.

    .venv/bin/python benchmarks/convention_layer.py [--out results/benchmarks/convention_layer.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import convention as base  # benchmarks/ is on sys.path when run as a script
import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM
from cardiopheno.segment.convention import UKBB_DEFAULT, smooth_endocardium
from cardiopheno.segment.data import acdc_patient_ids

FRACTIONS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40)
REPO = Path(__file__).resolve().parents[1]


def inner_layer(labels: np.ndarray, spacing, fraction: float) -> np.ndarray:
    """A copy of ``labels`` (X x Y [x ...]) in today's ``ukbb`` convention, then with the inner
    ``fraction`` of the wall moved to the cavity in every 2D slice (see the module)."""
    out = smooth_endocardium(labels.copy(), spacing)
    if fraction <= 0:
        return out
    spacing = (float(spacing[0]), float(spacing[1]))
    half = 0.5 * float(np.mean(spacing))
    wall = ndimage.distance_transform_edt  # distances in mm from pixel centres
    for k in np.ndindex(*out.shape[2:]):
        plane = out[(slice(None), slice(None), *k)]  # a view: writes reach ``out``
        cavity, myo = plane == LV_CAVITY, plane == LV_MYOCARDIUM
        if not cavity.any() or not myo.any():
            continue
        to_cavity = wall(~cavity, sampling=spacing) - half
        to_outside = wall(cavity | myo, sampling=spacing) - half
        depth = to_cavity / np.maximum(to_cavity + to_outside, 1e-6)
        plane[myo & (to_outside >= UKBB_DEFAULT.min_wall_mm) & (depth < fraction)] = LV_CAVITY
    return out


def acdc_table(frames: list[dict]) -> pd.DataFrame:
    """LV phenotypes per patient, label source and fraction (the ``radius_mm`` column of
    :mod:`convention`'s tables holds the fraction here, so its CV and summaries apply)."""
    rows = []
    for item in frames:
        for source in ("expert", "model"):
            for f in FRACTIONS:
                ed, es = (inner_layer(item[(source, p)], item["spacing"], f) for p in ("ED", "ES"))
                rows.append(
                    {
                        "patient": item["patient"],
                        "group": item["group"],
                        "source": source,
                        "radius_mm": f,
                        **base.lv_phenotypes(ed, es, item["voxel_ml"]),
                    }
                )
    return pd.DataFrame(rows)


def sunnybrook_myocardium(root: Path, segmenter) -> dict:
    """ED myocardium and cavity (mL) of the model per fraction against the experts, on the
    slices the experts contoured epicardially, at the experts' ED frame."""
    from cardiopheno.io.sunnybrook import load_sunnybrook_case

    links = pd.read_csv(root / "link.csv", dtype=str)
    out = {}
    for case_id, contour_id in zip(links.patient_id, links.original_id, strict=True):
        case = load_sunnybrook_case(root / "dicoms" / case_id, root / "contours" / contour_id)
        labels = segmenter.segment_array(case.image.data, case.image.spacing).labels
        ed = next(t for t in range(case.labels.shape[3]) if (case.labels[..., t] == 2).any())
        slices = [z for z in range(case.labels.shape[2]) if (case.labels[:, :, z, ed] == 2).any()]
        ml = case.image.voxel_volume_ml
        expert = case.labels[:, :, slices, ed]
        res = {"ed_frame": ed, "slices": slices}
        res["expert"] = {"myo_ml": _ml(expert, 2, ml), "cavity_ml": _ml(expert, 1, ml)}
        for f in FRACTIONS:
            model = inner_layer(labels[..., ed], case.image.spacing[:2], f)[:, :, slices]
            res[str(f)] = {"myo_ml": _ml(model, 2, ml), "cavity_ml": _ml(model, 1, ml)}
        out[case_id] = res
    return out


def mnms2_short_axis(root: Path, segmenter) -> dict:
    """M&Ms-2 001's short axis at ED and ES: Dice and volumes per fraction against its experts."""
    ed_img = nib.load(root / "001_SA_ED.nii.gz")
    zooms = ed_img.header.get_zooms()[:3]
    ml = float(np.prod(zooms)) / 1000
    ed_data = np.asarray(ed_img.dataobj, dtype=np.float32)
    out = {}
    for phase in ("ED", "ES"):
        image = np.asarray(nib.load(root / f"001_SA_{phase}.nii.gz").dataobj, dtype=np.float32)
        expert = np.rint(nib.load(root / f"001_SA_{phase}_gt.nii.gz").get_fdata()).astype(int)
        model = segmenter.segment_array(image, zooms[:2], reference=ed_data).labels
        for f in FRACTIONS:
            lab = inner_layer(model, zooms[:2], f)
            row = out.setdefault(str(f), {})
            for value, name in ((LV_CAVITY, "lv"), (LV_MYOCARDIUM, "myo")):
                a, b = lab == value, expert == value
                row[f"{phase}_{name}_dice"] = round(
                    float(2 * (a & b).sum() / (a.sum() + b.sum())), 3
                )
                row[f"{phase}_{name}_ml"] = _ml(lab, value, ml)
                row[f"{phase}_{name}_ml_expert"] = _ml(expert, value, ml)
    return out


def phantom(n_subjects: int, seed: int) -> dict:
    """The phantom with its trabeculated layer: cavity and myocardium volume error (%) of the
    ``acdc``-shaped labels per fraction against the smooth-endocardium truth, at ED and ES."""
    from cardiopheno.synth.imaging import simulate_subject
    from cardiopheno.synth.population import sample_population
    from cardiopheno.synth.trabeculae import add_trabeculae

    pop = sample_population(n_subjects, seed)
    rows = []
    for i in range(n_subjects):
        subject = simulate_subject(pop.iloc[i], seed, i, views=())
        spacing = subject.zooms[:2]
        _, acdc = add_trabeculae(subject.image, subject.labels, spacing, np.random.default_rng(i))
        for phase in ("ED", "ES"):
            t = subject.truth[f"{phase}_frame"]
            truth = subject.labels[..., t]
            for f in FRACTIONS:
                lab = inner_layer(acdc[..., t], spacing, f)
                rows.append(
                    {
                        "phase": phase,
                        "fraction": f,
                        "lv_pct": 100 * ((lab == 1).sum() / (truth == 1).sum() - 1),
                        "myo_pct": 100 * ((lab == 2).sum() / (truth == 2).sum() - 1),
                    }
                )
    table = pd.DataFrame(rows).groupby(["phase", "fraction"]).mean().round(2)
    return {f"{p} {f}": v for (p, f), v in table.to_dict("index").items()}


def _ml(labels: np.ndarray, value: int, voxel_ml: float) -> float:
    return round(float((labels == value).sum()) * voxel_ml, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", default="13-16,33-36,53-56,61-76,93-96")
    ap.add_argument("--out", type=Path, default=REPO / "results/benchmarks/convention_layer.json")
    args = ap.parse_args()
    from cardiopheno.segment.infer import PassOptions, Segmenter, StepOptions

    segmenter = Segmenter(
        device="cpu", steps=StepOptions(convention="acdc"), passes=PassOptions(tta=False)
    )
    base.RADII = FRACTIONS  # convention.cross_validate's grid
    t0 = time.perf_counter()
    result: dict = {"fractions": FRACTIONS, "machine": platform.platform()}
    result["phantom"] = phantom(6, seed=11)
    frames = base.acdc_frames(base.DATA / "acdc", acdc_patient_ids(args.patients), segmenter)
    table = acdc_table(frames)
    result["acdc_change"] = base.change_summary(table)
    result["acdc_nor_vs_ukbb"] = base.normal_group(table)
    result["sunnybrook"] = sunnybrook_myocardium(base.DATA / "sunnybrook", segmenter)
    result["mnms2_001_sa"] = mnms2_short_axis(base.DATA / "mnms2" / "001", segmenter)
    result["seconds"] = time.perf_counter() - t0
    for source in ("expert", "model"):
        print(source, result["acdc_nor_vs_ukbb"][source]["cross_validation"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
