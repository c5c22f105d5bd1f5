"""Endocardial convention (issue #32): how the ``ukbb`` transform moves LV volumes and mass.

Four checks, none of whose truth this project drew:

1. The phantom with its optional trabeculated layer (``cardiopheno.synth.trabeculae``): the
   ``acdc``-shaped labels (dark trabeculae = myocardium) against the smooth-endocardium truth,
   before and after the transform (labels only, no network).
2. ACDC's expert labels and the shipped model's labels: LVEDV, LVESV, LVEF and LV mass under
   ``acdc`` (as drawn) and ``ukbb`` for each closing radius.
3. Sunnybrook's expert contours (their protocol already puts papillary muscles and trabeculae in
   the cavity) and the model's labels, the same way.
4. ACDC's normal group (NOR, patients 061-076) against the UK Biobank reference ranges (Petersen
   et al., JCMR 2017): the closing radius chosen by repeated 4-fold cross-validation over the
   patients (mean of each fold's training patients as close as possible to the UK Biobank mean),
   scored on the held-out patients; bootstrap intervals over patients.

    .venv/bin/python benchmarks/convention.py [--out results/benchmarks/convention.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM
from cardiopheno.definitions import MYOCARDIAL_DENSITY_G_PER_ML
from cardiopheno.segment.convention import UKBB_DEFAULT, SmoothEndocardium, smooth_endocardium
from cardiopheno.segment.data import acdc_ed_spacing, acdc_patient_ids, read_acdc_volume

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RADII = (0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0)  # 0 = acdc (nothing moves)
MIN_WALL_MM = 2.0
IDPS = ("LVEDV", "LVESV", "LVEF", "LVM")
# Petersen et al., JCMR 2017;19:18, healthy UK Biobank Caucasians aged 45-74, mean (SD); the
# limits are mean +- 2 SD. LVEF and indexed LVM are in the abstract (read); the absolute values
# are its Table 2 as recalled, not re-read from the paper: check them before citing.
UKBB = {
    "male": {"n": 368, "LVEDV": (166, 32), "LVESV": (69, 16), "LVEF": (58, 5), "LVM": (103, 21)},
    "female": {"n": 432, "LVEDV": (124, 21), "LVESV": (49, 11), "LVEF": (61, 5), "LVM": (70, 13)},
}


def pooled_reference() -> dict[str, tuple[float, float]]:
    """Mean and SD of the sexes together (ACDC records no sex): weighted means, and the
    within-sex variance plus the variance between the sexes' means."""
    w = np.array([UKBB["male"]["n"], UKBB["female"]["n"]], float)
    w /= w.sum()
    out = {}
    for idp in IDPS:
        means = np.array([UKBB["male"][idp][0], UKBB["female"][idp][0]], float)
        sds = np.array([UKBB["male"][idp][1], UKBB["female"][idp][1]], float)
        mean = float(w @ means)
        out[idp] = (mean, float(np.sqrt(w @ sds**2 + w @ (means - mean) ** 2)))
    return out


def lv_phenotypes(ed: np.ndarray, es: np.ndarray, voxel_ml: float) -> dict[str, float]:
    edv = float((ed == LV_CAVITY).sum()) * voxel_ml
    esv = float((es == LV_CAVITY).sum()) * voxel_ml
    lvm = MYOCARDIAL_DENSITY_G_PER_ML * float((ed == LV_MYOCARDIUM).sum()) * voxel_ml
    return {"LVEDV": edv, "LVESV": esv, "LVEF": 100 * (edv - esv) / edv, "LVM": lvm}


def transformed(labels: np.ndarray, spacing, radius: float) -> np.ndarray:
    if radius <= 0:
        return labels
    return smooth_endocardium(labels.copy(), spacing, SmoothEndocardium(radius, MIN_WALL_MM))


def acdc_frames(root: Path, patients: list[str], segmenter=None) -> list[dict]:
    """Per patient: ED and ES labels (X x Y x slices) of the expert and, with a segmenter, of
    the model; in-plane spacing and voxel volume."""
    ref = pd.read_csv(root / "reference.csv").set_index("patient")
    out = []
    for pid in patients:
        r = ref.loc[pid]
        spacing = acdc_ed_spacing(root, pid, float(r.voxel_volume_mm3), int(r.ed_frame))
        item = {"patient": pid, "group": r.group, "spacing": spacing[:2]}
        item["voxel_ml"] = float(r.voxel_volume_mm3) / 1000.0
        ed_image = None
        for phase, frame in (("ED", int(r.ed_frame)), ("ES", int(r.es_frame))):
            image, label = read_acdc_volume(root / "volumes" / f"{pid}_frame{frame:02d}.h5")
            ed_image = image if ed_image is None else ed_image
            item[("expert", phase)] = label.transpose(1, 2, 0)
            if segmenter is not None:
                seg = segmenter.segment_array(
                    image.transpose(1, 2, 0), spacing, reference=ed_image.transpose(1, 2, 0)
                )
                item[("model", phase)] = seg.labels
        out.append(item)
    return out


def sweep(frames: list[dict], sources=("expert", "model")) -> pd.DataFrame:
    """LV phenotypes of every patient, label source and closing radius (0 = acdc)."""
    rows = []
    for item in frames:
        for source in sources:
            if (source, "ED") not in item:
                continue
            for radius in RADII:
                ed, es = (
                    transformed(item[(source, p)], item["spacing"], radius) for p in ("ED", "ES")
                )
                rows.append(
                    {
                        "patient": item["patient"],
                        "group": item["group"],
                        "source": source,
                        "radius_mm": radius,
                        **lv_phenotypes(ed, es, item["voxel_ml"]),
                    }
                )
    return pd.DataFrame(rows)


def distance(means: pd.Series, reference: dict) -> float:
    """Sum of squared z-scores of a group's means against the pooled UK Biobank reference."""
    return float(sum(((means[k] - reference[k][0]) / reference[k][1]) ** 2 for k in IDPS))


def cross_validate(table: pd.DataFrame, repeats: int = 50, seed: int = 0) -> dict:
    """Repeated 4-fold CV over patients: each fold's radius minimises :func:`distance` on its
    training patients; the held-out patients' means are scored with it and with radius 0."""
    reference = pooled_reference()
    by_radius = {r: t.set_index("patient")[list(IDPS)] for r, t in table.groupby("radius_mm")}
    patients = np.array(sorted(table.patient.unique()))
    rng = np.random.default_rng(seed)
    chosen, held_chosen, held_acdc = [], [], []
    for _ in range(repeats):
        for fold in np.array_split(rng.permutation(patients), 4):
            train = np.setdiff1d(patients, fold)
            best = min(RADII, key=lambda r: distance(by_radius[r].loc[train].mean(), reference))
            chosen.append(best)
            held_chosen.append(distance(by_radius[best].loc[fold].mean(), reference))
            held_acdc.append(distance(by_radius[0.0].loc[fold].mean(), reference))
    values, counts = np.unique(chosen, return_counts=True)
    return {
        "chosen_radius_mm": {str(v): int(c) for v, c in zip(values, counts, strict=True)},
        "held_out_distance_chosen": float(np.mean(held_chosen)),
        "held_out_distance_acdc": float(np.mean(held_acdc)),
        "held_out_better_fraction": float(np.mean(np.array(held_chosen) < np.array(held_acdc))),
    }


def bootstrap_means(table: pd.DataFrame, n: int = 2000, seed: int = 0) -> dict:
    """Group means with 95 % bootstrap intervals over patients."""
    values = table[list(IDPS)].to_numpy()
    rng = np.random.default_rng(seed)
    boot = values[rng.integers(0, len(values), (n, len(values)))].mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    return {
        k: [round(float(m), 1), round(float(a), 1), round(float(b), 1)]
        for k, m, a, b in zip(IDPS, values.mean(axis=0), lo, hi, strict=True)
    }


def change_summary(table: pd.DataFrame) -> dict:
    """Mean change (and % change) of each IDP from radius 0, per source and radius."""
    out = {}
    for (source, radius), t in table.groupby(["source", "radius_mm"]):
        base = table[(table.source == source) & (table.radius_mm == 0)].set_index("patient")
        d = t.set_index("patient")[list(IDPS)] - base[list(IDPS)]
        pct = 100 * d / base[list(IDPS)]
        out.setdefault(source, {})[str(radius)] = {
            k: {"mean": round(float(d[k].mean()), 2), "pct": round(float(pct[k].mean()), 1)}
            for k in IDPS
        }
    return out


def normal_group(table: pd.DataFrame) -> dict:
    """ACDC NOR against UK Biobank: means with intervals per source and radius, the CV."""
    nor = table[table.group == "NOR"]
    out = {"ukbb_reference": UKBB, "ukbb_pooled": pooled_reference()}
    for source, t in nor.groupby("source"):
        out[source] = {
            "means_ci": {str(r): bootstrap_means(g) for r, g in t.groupby("radius_mm")},
            "cross_validation": cross_validate(t),
        }
    return out


def synthetic(n_subjects: int, seed: int) -> dict:
    """Phantom subjects with the trabeculated layer: cavity and myocardium volume error and
    cavity Dice against the smooth-endocardium truth, as drawn (acdc) and after the transform,
    at ED and ES; and the transform's time per subject (whole cine)."""
    from cardiopheno.synth.imaging import simulate_subject
    from cardiopheno.synth.population import sample_population
    from cardiopheno.synth.trabeculae import add_trabeculae

    pop = sample_population(n_subjects, seed)
    rows, seconds = [], []
    for i in range(n_subjects):
        subject = simulate_subject(pop.iloc[i], seed, i, views=())
        spacing = subject.zooms[:2]
        _, acdc = add_trabeculae(subject.image, subject.labels, spacing, np.random.default_rng(i))
        t0 = time.perf_counter()
        ukbb = smooth_endocardium(acdc.copy(), spacing)
        seconds.append(time.perf_counter() - t0)
        for phase in ("ED", "ES"):
            f = subject.truth[f"{phase}_frame"]
            truth = subject.labels[..., f]
            for name, lab in (("acdc", acdc[..., f]), ("ukbb", ukbb[..., f])):
                cav, tcav = lab == LV_CAVITY, truth == LV_CAVITY
                rows.append(
                    {
                        "subject": i,
                        "phase": phase,
                        "labels": name,
                        "lv_pct": 100 * (cav.sum() / tcav.sum() - 1),
                        "myo_pct": 100 * ((lab == 2).sum() / (truth == 2).sum() - 1),
                        "dice_lv": 2 * (cav & tcav).sum() / (cav.sum() + tcav.sum()),
                    }
                )
    df = pd.DataFrame(rows)
    summary = df.groupby(["phase", "labels"])[["lv_pct", "myo_pct", "dice_lv"]].mean()
    return {
        "n_subjects": n_subjects,
        "seed": seed,
        "mean": {f"{p} {lab}": v for (p, lab), v in summary.round(3).to_dict("index").items()},
        "transform_seconds_per_subject": [round(float(s), 3) for s in seconds],
    }


def sunnybrook(root: Path, segmenter=None) -> dict:
    """Expert (ED myocardium only) and model LV volumes on Sunnybrook under each convention."""
    from cardiopheno.io.sunnybrook import expert_lv_volumes, load_sunnybrook_case, model_vs_expert

    links = pd.read_csv(root / "link.csv", dtype=str)
    out = {}
    for case_id, contour_id in zip(links.patient_id, links.original_id, strict=True):
        case = load_sunnybrook_case(root / "dicoms" / case_id, root / "contours" / contour_id)
        spacing = case.image.spacing[:2]
        res = {}
        for radius in (0.0, UKBB_DEFAULT.closing_mm):
            exp = case._replace(labels=transformed(case.labels, spacing, radius))
            v = expert_lv_volumes(exp)
            res[f"expert r={radius}"] = {
                k: round(v[k], 1) for k in ("LVEDV", "LVESV", "LVEF", "LVM")
            }
        if segmenter is not None:
            labels = segmenter.segment_array(case.image.data, case.image.spacing).labels
            for radius in (0.0, UKBB_DEFAULT.closing_mm):
                m = model_vs_expert(case, transformed(labels, spacing, radius))
                res[f"model r={radius}"] = {k: round(float(v), 3) for k, v in m.items()}
        out[case_id] = res
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--acdc", type=Path, default=DATA / "acdc")
    ap.add_argument("--sunnybrook", type=Path, default=DATA / "sunnybrook")
    ap.add_argument("--patients", default="13-16,33-36,53-56,61-76,93-96")
    ap.add_argument("--no-model", action="store_true", help="expert labels only (no network)")
    ap.add_argument("--synthetic", type=int, default=6, help="phantom subjects (0: none)")
    ap.add_argument("--out", type=Path, default=REPO / "results/benchmarks/convention.json")
    args = ap.parse_args()
    segmenter = None
    if not args.no_model:
        from cardiopheno.segment.infer import PassOptions, Segmenter, StepOptions

        segmenter = Segmenter(
            device="cpu",
            steps=StepOptions(convention="acdc"),
            passes=PassOptions(tta=False),
        )
    result: dict = {"radii_mm": RADII, "min_wall_mm": MIN_WALL_MM}
    t0 = time.perf_counter()
    if args.synthetic:
        result["synthetic"] = synthetic(args.synthetic, seed=11)
        print("synthetic", json.dumps(result["synthetic"]["mean"], indent=1))
    if args.acdc.is_dir():
        frames = acdc_frames(args.acdc, acdc_patient_ids(args.patients), segmenter)
        table = sweep(frames)
        result["acdc_change"] = change_summary(table)
        result["acdc_nor_vs_ukbb"] = normal_group(table)
        result["acdc_per_patient"] = table.round(2).to_dict("records")
        print(
            "ACDC change at r=5",
            json.dumps({s: v["5.0"] for s, v in result["acdc_change"].items()}),
        )
        for source in ("expert", "model"):
            nor = result["acdc_nor_vs_ukbb"].get(source)
            if nor:
                print(source, "NOR CV", nor["cross_validation"])
    else:
        print(f"no ACDC at {args.acdc}: skipped")
    if args.sunnybrook.is_dir():
        result["sunnybrook"] = sunnybrook(args.sunnybrook, segmenter)
        print("sunnybrook", json.dumps(result["sunnybrook"], indent=1))
    result["seconds"] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
