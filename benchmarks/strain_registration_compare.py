"""Registration methods for strain, on the same synthetic subjects and the same strain code.

- ``torch``: cardiopheno.motion (batched B-spline FFD, every frame to ED at once), with the
  configured settings and a few variants (``--variants``);
- ``sitk``: SimpleITK's 2D B-spline registration (mean squares, LBFGSB, 3 levels, control grid
  every 8 pixels), one ED -> frame pair at a time, its transform sampled on the same crop
  (SimpleITK is not a project dependency: ``pip install SimpleITK==2.5.2`` to run this part).

Writes results/benchmarks/strain_registration_compare.json.

    .venv/bin/python benchmarks/strain_registration_compare.py --n 3 --seed 101
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

import cardiopheno.phenotypes.strain as strain_mod
from cardiopheno.motion.register import SliceMotion, _crop_box, track_slices
from cardiopheno.phenotypes import SubjectContext, compute_phenotypes, resolve_families
from cardiopheno.synth.imaging import simulate_subject
from cardiopheno.synth.population import sample_population


def sitk_track(image, labels, slices, ed_frame, spacing=(1.0, 1.0), settings=None):
    """SliceMotion from SimpleITK B-spline registrations of each frame to ED (pixel units)."""
    import SimpleITK as sitk

    t0 = time.perf_counter()
    margin = int(math.ceil(15.0 / min(spacing)))
    bx, by = _crop_box(labels, slices, margin)
    n_t = image.shape[3]
    h, w = bx.stop - bx.start, by.stop - by.start
    disp = np.zeros((len(slices), n_t, 2, h, w), np.float32)
    for si, z in enumerate(slices):
        crop = image[bx, by, z].astype(np.float32)
        scale = np.percentile(crop[..., ed_frame], 99.0)
        # sitk arrays are (y, x): transpose so that sitk x = our first axis, in pixel units
        fixed = sitk.GetImageFromArray((crop[..., ed_frame] / scale).T.copy())
        for t in range(n_t):
            if t == ed_frame:
                continue
            moving = sitk.GetImageFromArray((crop[..., t] / scale).T.copy())
            tx = sitk.BSplineTransformInitializer(fixed, [max(1, h // 8), max(1, w // 8)], order=3)
            reg = sitk.ImageRegistrationMethod()
            reg.SetMetricAsMeanSquares()
            reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=50)
            reg.SetInterpolator(sitk.sitkLinear)
            reg.SetShrinkFactorsPerLevel([4, 2, 1])
            reg.SetSmoothingSigmasPerLevel([2, 1, 0])
            reg.SetInitialTransform(tx, inPlace=True)
            out = reg.Execute(fixed, moving)
            field = sitk.TransformToDisplacementField(
                out, sitk.sitkVectorFloat64, fixed.GetSize(), fixed.GetOrigin(),
                fixed.GetSpacing(), fixed.GetDirection(),
            )  # fmt: skip
            arr = sitk.GetArrayFromImage(field)  # (w, h, 2): [y, x] -> (dx, dy)
            disp[si, t] = np.moveaxis(arr, -1, 0).transpose(0, 2, 1)
    return SliceMotion(list(slices), ed_frame, (bx.start, by.start), disp,
                       np.zeros((len(slices), n_t)), time.perf_counter() - t0)  # fmt: skip


def run(method: str, subjects, options: dict) -> dict:
    if method == "sitk":
        strain_mod.track_slices = sitk_track
    else:
        strain_mod.track_slices = track_slices
    fams = resolve_families(["strain"])
    errs = {"Ecc_global": [], "Err_global": [], "Ecc_segmental": []}
    secs = []
    for s in subjects:
        ctx = SubjectContext(s.labels, s.zooms[:3], s.zooms[3], image=s.image, affine=s.affine,
                             options={"strain": options})  # fmt: skip
        t0 = time.perf_counter()
        v = compute_phenotypes(ctx, fams)
        secs.append(time.perf_counter() - t0)
        for k in ("Ecc_global", "Err_global"):
            errs[k].append(v[k] - s.truth[k])
        errs["Ecc_segmental"] += [v[f"Ecc_AHA_{k}"] - s.truth[f"Ecc_AHA_{k}"] for k in range(1, 17)]
    strain_mod.track_slices = track_slices
    out = {k: {"mae": float(np.nanmean(np.abs(e))), "bias": float(np.nanmean(e))}
           for k, e in errs.items()}  # fmt: skip
    out["seconds_per_subject"] = float(np.mean(secs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--no-sitk", action="store_true")
    ap.add_argument("--out", default="results/benchmarks/strain_registration_compare.json")
    args = ap.parse_args()
    pop = sample_population(args.n, args.seed)
    subjects = [simulate_subject(pop.iloc[i], args.seed, i, hypokinesis=bool(i % 2))
                for i in range(args.n)]  # fmt: skip
    variants = {
        "torch default (labels + incompressibility)": {},
        "torch image + labels only": {"incompressibility": 0.0},
        "torch image only": {"incompressibility": 0.0, "label_weight": 0.0},
    }
    result = {"n": args.n, "seed": args.seed, "note": "2 shared cores, other jobs running"}
    for name, opt in variants.items():
        result[name] = run("torch", subjects, opt)
        print(name, result[name], flush=True)
    if not args.no_sitk:
        try:
            import SimpleITK  # noqa: F401
        except ImportError:
            result["sitk"] = "SimpleITK not installed"
        else:
            result["SimpleITK B-spline, pairwise ED -> t"] = run("sitk", subjects, {})
            print("sitk", result["SimpleITK B-spline, pairwise ED -> t"], flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
