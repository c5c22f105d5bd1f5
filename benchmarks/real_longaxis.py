"""The long-axis models on the only public real labelled 4-chamber cine, and the label-free checks
on a second real subject (../shared/data/mnms2, M&Ms-2; see its README).

    python benchmarks/real_longaxis.py [--checkpoint la_4ch=PATH] [--checkpoint sa=PATH]

M&Ms-2 subject 001: the 4-chamber cine (25 frames) is segmented whole; at the experts' ED and ES
frames (23 and 8) the LV, myocardium and RV are scored against their labels (there are no
public atrial labels); the short-axis model is scored on the same subject's ED and ES stacks
(the ES frame given its ED frame as reference). Both subjects: the 4-chamber ventricles against
the short axis along the planes' intersection (qc.crossview; the experts' own pair gives the
ceiling), the atrial volumes from our labels (single plane; the short axis only orients), and the
view QC's trust checks on our segmentation. Writes results/benchmarks/real_longaxis.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from cardiopheno.io.nifti import save_nifti
from cardiopheno.phenotypes import compute_phenotypes, resolve_families
from cardiopheno.phenotypes.registry import context_from_files
from cardiopheno.qc.crossview import ventricle_agreement
from cardiopheno.qc.views import ViewEvidence, check_views
from cardiopheno.segment.infer import ComputeOptions, Segmenter, dice

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnms2"
ED, ES = 23, 8  # the expert-labelled frames of 001_LA_CINE (0-based; README)
KEYS = {1: "lv", 2: "myo", 3: "rv"}
ATRIAL = ("LAV_max", "LAV_min", "LAEF", "RAV_max", "RAV_min", "RAEF")


def _load(path: Path, labels: bool = False):
    img = nib.load(str(path))
    data = np.asarray(img.dataobj, dtype=np.float32)
    return (np.rint(data).astype(np.uint8) if labels else data), img


def _sa(seg: Segmenter, ed_path: Path, es_path: Path) -> np.ndarray:
    """Our short-axis labels X x Y x Z x 2 (ED, ES): ES with its ED frame as reference."""
    ed, img = _load(ed_path)
    es, _ = _load(es_path)
    zooms = img.header.get_zooms()[:3]
    a = seg.segment_array(ed, zooms).labels
    b = seg.segment_array(es, zooms, reference=ed).labels
    return np.stack([a, b], axis=-1)


def _atria(la: np.ndarray, la_img, sa: np.ndarray, sa_img, tmp: Path, name: str) -> dict:
    """Atrial phenotypes from a 4-chamber label map (X x Y x 1 x T) and a short-axis one."""
    sa_path, la_path = tmp / f"{name}_sa.nii.gz", tmp / f"{name}_la.nii.gz"
    save_nifti(sa_path, sa, sa_img.affine, (*sa_img.header.get_zooms()[:3], 1.0))
    save_nifti(la_path, la, la_img.affine, (*la_img.header.get_zooms()[:3], 1.0))
    ctx = context_from_files(sa_path, eid=name, views={"la_4ch": la_path})
    out = compute_phenotypes(ctx, resolve_families(["atrial_function"]))
    return {k: float(out.get(k, np.nan)) for k in ATRIAL}


def _trust(la, la_img, sa, sa_img, tta: dict, atria: dict) -> dict:
    evidence = ViewEvidence(
        {f"la_4ch:{k}": v for k, v in tta.items()},
        {"la_4ch": la_img.affine},
        sa,
        sa_img.affine,
        atria,
    )
    results, masked = check_views({"la_4ch": la}, evidence=evidence)
    return {
        "checks": {r.name: r.passed for r in results},
        "reasons": "; ".join(f"{r.name}: {r.reason}" for r in results if r.passed is False),
        "masked": sorted(masked),
    }


def subject_001(la_seg: Segmenter, sa_seg: Segmenter, tmp: Path) -> dict:
    root = DATA / "001"
    cine, la_img = _load(root / "001_LA_CINE.nii.gz")
    res = la_seg.segment_array(cine, la_img.header.get_zooms()[:3], affine=la_img.affine)
    la = res.labels  # X x Y x 1 x T
    out: dict = {"dice_4ch": {}, "crossview": {}}
    for phase, frame in (("ED", ED), ("ES", ES)):
        gt, _ = _load(root / f"001_LA_{phase}_gt.nii.gz", labels=True)
        pred = la[:, :, 0, frame]
        out["dice_4ch"][phase] = {k: dice(pred == c, gt[..., 0] == c) for c, k in KEYS.items()}
    sa_gt = np.stack(
        [_load(root / f"001_SA_{p}_gt.nii.gz", labels=True)[0] for p in ("ED", "ES")], axis=-1
    )
    sa_img = nib.load(str(root / "001_SA_ED.nii.gz"))
    sa = _sa(sa_seg, root / "001_SA_ED.nii.gz", root / "001_SA_ES.nii.gz")
    out["dice_sa"] = {
        p: {k: dice(sa[..., i] == c, sa_gt[..., i] == c) for c, k in KEYS.items()}
        for i, p in enumerate(("ED", "ES"))
    }
    for phase, i, frame in (("ED", 0, ED), ("ES", 1, ES)):
        gt, _ = _load(root / f"001_LA_{phase}_gt.nii.gz", labels=True)
        a = sa_img.affine, la_img.affine
        out["crossview"][phase] = {
            "experts": ventricle_agreement(sa_gt[..., i], a[0], gt[..., 0], a[1]).dice,
            "ours_vs_expert_sa": ventricle_agreement(
                sa_gt[..., i], a[0], la[:, :, 0, frame], a[1]
            ).dice,
            "ours_vs_our_sa": ventricle_agreement(sa[..., i], a[0], la[:, :, 0, frame], a[1]).dice,
        }
    out["atria"] = _atria(la, la_img, sa_gt, sa_img, tmp, "mnms2_001")
    out["tta"] = res.tta
    # the short axis holds ED and ES only: each 4-chamber frame gets the nearer of the two in
    # the cycle, so the QC pairs phases as it does with whole cines
    n = la.shape[-1]
    near_es = [min((f - ES) % n, (ES - f) % n) < min((f - ED) % n, (ED - f) % n) for f in range(n)]
    sa_cine = sa[..., np.asarray(near_es, dtype=int)]
    out["qc"] = _trust(la, la_img, sa_cine, sa_img, res.tta, out["atria"])
    return out


def subject_cinema(la_seg: Segmenter, sa_seg: Segmenter, tmp: Path) -> dict:
    """The CineMA example: ED and ES frames only, no labels."""
    root = DATA / "cinema_example"
    frames, tta = [], []
    for p in ("ed", "es"):
        img, la_img = _load(root / f"lax_4c_{p}.nii.gz")
        res = la_seg.segment_array(img, la_img.header.get_zooms()[:3], affine=la_img.affine)
        frames.append(res.labels)
        tta.append(res.tta)
    la = np.stack(frames, axis=-1)  # X x Y x 1 x 2
    sa_img = nib.load(str(root / "sax_ed.nii.gz"))
    sa = _sa(sa_seg, root / "sax_ed.nii.gz", root / "sax_es.nii.gz")
    cross = {
        p: ventricle_agreement(sa[..., i], sa_img.affine, la[:, :, 0, i], la_img.affine).dice
        for i, p in enumerate(("ED", "ES"))
    }
    mean_tta = {k: float(np.mean([t[k] for t in tta])) for k in tta[0]}
    atria = _atria(la, la_img, sa, sa_img, tmp, "cinema")
    return {
        "crossview_ours": cross,
        "atria_two_frames": atria,
        "tta": mean_tta,
        "qc": _trust(la, la_img, sa, sa_img, mean_tta, atria),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", action="append", default=[], metavar="VIEW=PATH")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="results/benchmarks/real_longaxis.json")
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is absent: this benchmark needs ../shared/data/mnms2")
    torch.set_num_threads(args.threads)
    ckpts = dict(c.split("=", 1) for c in args.checkpoint)
    compute = ComputeOptions(threads=args.threads)
    la_seg = Segmenter(ckpts.get("la_4ch"), view="la_4ch", device="cpu", compute=compute)
    sa_seg = Segmenter(ckpts.get("sa"), view="sa", device="cpu", compute=compute)
    with tempfile.TemporaryDirectory() as tmp:
        result = {
            "data": "M&Ms-2 subject 001 (4-chamber cine + short axis, expert LV/myo/RV at ED/ES); "
            "CineMA's M&Ms-2 example (unlabelled)",
            "checkpoints": {"la_4ch": str(la_seg.checkpoint), "sa": str(sa_seg.checkpoint)},
            "sha256": {"la_4ch": la_seg.sha256, "sa": sa_seg.sha256},
            "machine": f"{platform.machine()}, {args.threads} threads",
            "mnms2_001": subject_001(la_seg, sa_seg, Path(tmp)),
            "cinema_example": subject_cinema(la_seg, sa_seg, Path(tmp)),
        }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float))
    print(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
