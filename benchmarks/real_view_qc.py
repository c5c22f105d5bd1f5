"""Does the long-axis view QC catch 4-chamber segmentations that are wrong on a real cine (issue
#30)? Its sensitivity and specificity against expert labels, not against synthetic faults.

    OMP_NUM_THREADS=1 python benchmarks/real_view_qc.py [--threads 1] [--out PATH]

M&Ms-2 subject 001 (../shared/data/mnms2, see its README): the real 4-chamber cine is segmented
many ways, each one a case: the shipped 4-chamber model, the older shipped versions from git
history, the shipped model on the cine after realistic acquisition faults (MONAI's bias field,
Rician noise, blur, lower resolution, Gibbs ringing, a k-space spike; a ghost, a dark band and a
field-of-view crop by hand; fixed seeds) and on the cine with a wrong header (in-plane axes of the
affine swapped or flipped). Each case is scored against the experts' LV, myocardium and RV at ED
and ES (frames 23 and 8) and judged by the view QC as the workflow judges it
(:func:`cardiopheno.qc.views.check_views` with test-time augmentation, the short axis segmented
by our model and the atrial phenotypes). A case is a failure when the LV or RV Dice at ED or ES is
below 0.8 (there are no public atrial labels, so the ventricles stand in for the atria); it is
flagged when the QC masks every atrial phenotype that has a value (the LA is biplane and needs a
2-chamber view, absent here, so only the RA's values exist). The 2x2 table gives sensitivity and
specificity with 95 % Wilson intervals; post hoc, the same at Dice 0.7 and 0.5, with any atrial
mask as the flag, and with the cross-view check at its version-3 threshold (0.6). Each case also
keeps the cross-view agreement per frame and RAV_max against the unmodified cine's (no truth).
Reuses benchmarks/real_longaxis.py; about 30 s on one core. Writes
results/benchmarks/real_view_qc.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.transforms import (
    AdjustContrast,
    GaussianSmooth,
    RandBiasField,
    RandGibbsNoise,
    RandKSpaceSpikeNoise,
    RandRicianNoise,
    RandSimulateLowResolution,
)
from statsmodels.stats.proportion import proportion_confint

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_longaxis as rl  # noqa: E402

from cardiopheno.qc.crossview import ventricle_agreement  # noqa: E402
from cardiopheno.qc.views import ViewEvidence, ViewQCThresholds, check_crossview  # noqa: E402
from cardiopheno.segment.infer import ComputeOptions, Segmenter, dice  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = "src/cardiopheno/models/segment_la_4ch_unet.pt"
OLD_MODELS = {"version 3": "0d3739d", "version 2": "69b20e2", "version 1": "f67f6c7"}
FAIL_DICE = 0.8  # the threshold, on the ventricles (no atrial labels)
SEED = 30


@dataclass
class Subject:
    """M&Ms-2 001: the 4-chamber cine, the experts' labels and our short-axis labels."""

    cine: np.ndarray  # X x Y x 1 x T
    la_img: nib.Nifti1Image
    gt: dict[str, np.ndarray]  # phase -> X x Y expert labels
    sa: np.ndarray  # X x Y x Z x 2 (ED, ES), our short-axis model
    sa_img: nib.Nifti1Image
    tmp: Path
    blood: float = field(init=False)  # median LV blood-pool intensity at ED

    def __post_init__(self) -> None:
        self.blood = float(np.median(self.cine[:, :, 0, rl.ED][self.gt["ED"] == 1]))


@dataclass
class Case:
    name: str
    category: str
    cine: np.ndarray
    affine: np.ndarray | None = None  # None: the file's
    window: tuple[slice, slice] | None = None  # field-of-view crop of the in-plane grid
    model: str = "shipped"  # the checkpoint in src/cardiopheno/models


def load_subject(sa_seg: Segmenter, tmp: Path) -> Subject:
    root = rl.DATA / "001"
    cine, la_img = rl._load(root / "001_LA_CINE.nii.gz")
    gt = {p: rl._load(root / f"001_LA_{p}_gt.nii.gz", labels=True)[0][..., 0] for p in ("ED", "ES")}
    sa = rl._sa(sa_seg, root / "001_SA_ED.nii.gz", root / "001_SA_ES.nii.gz")
    return Subject(cine, la_img, gt, sa, nib.load(str(root / "001_SA_ED.nii.gz")), tmp)


def sa_cine(sa: np.ndarray, n: int) -> np.ndarray:
    """The two short-axis phases spread over ``n`` 4-chamber frames, each frame given the nearer
    of ED and ES in the cycle (as real_longaxis.subject_001 pairs them for the QC)."""
    dist = [(min((f - e) % n, (e - f) % n) for e in (rl.ED, rl.ES)) for f in range(n)]
    return sa[..., np.asarray([d_es < d_ed for d_ed, d_es in dist], dtype=int)]


# ------------------------------------------------------------------------- perturbations


def _channels(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[np.ndarray], np.ndarray]:
    """A MONAI array transform on X x Y x 1 x T, with the frames as its channels."""

    def apply(cine: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(cine[:, :, 0].transpose(2, 0, 1)))
        y = np.asarray(fn(x), dtype=np.float32)
        return np.clip(y.transpose(1, 2, 0)[:, :, None], 0, None)

    return apply


def _seeded(transform):
    transform.set_random_state(SEED)
    return transform


def _ghost(cine: np.ndarray, amplitude: float, axis: int, shift: int = 32) -> np.ndarray:
    """Faint copies of the image shifted by +-``shift`` pixels along ``axis`` (phase encoding,
    unknown from the header: both in-plane axes are tried), as breathing or motion ghosts."""
    copies = np.roll(cine, shift, axis=axis) + np.roll(cine, -shift, axis=axis)
    return cine + 0.5 * amplitude * copies


def _band(cine: np.ndarray, depth: float, centre: float = 112.0, width: float = 8.0):
    """A dark band across the first axis (signal dropout) through the atrioventricular plane."""
    i = np.arange(cine.shape[0], dtype=np.float32)
    gain = 1.0 - depth * np.exp(-(((i - centre) / width) ** 2))
    return cine * gain[:, None, None, None]


def acquisition_cases(s: Subject) -> Iterator[Case]:
    """The shipped model's input with acquisition faults of rising severity."""
    c = s.cine
    for coeff in (0.3, 0.6, 1.0):
        bias = _seeded(RandBiasField(degree=3, coeff_range=(-coeff, coeff), prob=1.0))
        yield Case(f"bias field coeff {coeff}", "bias field", _channels(bias)(c))
    for snr in (10, 5, 3):
        std = s.blood / snr
        noise = RandRicianNoise(prob=1.0, std=std, sample_std=False)
        yield Case(f"Rician noise SNR {snr}", "noise", _channels(_seeded(noise))(c))
    for sigma in (1.5, 3.0):
        yield Case(f"Gaussian blur sigma {sigma} px", "blur", _channels(GaussianSmooth(sigma))(c))
    for zoom in (0.5, 0.33):
        low = RandSimulateLowResolution(1.0, "area", "bicubic", zoom_range=(zoom, zoom))
        yield Case(f"resolution x{zoom}", "blur", _channels(_seeded(low))(c))
    for alpha in (0.6, 0.85):
        gibbs = RandGibbsNoise(prob=1.0, alpha=(alpha, alpha))
        yield Case(f"Gibbs ringing alpha {alpha}", "blur", _channels(_seeded(gibbs))(c))
    spike = RandKSpaceSpikeNoise(prob=1.0, channel_wise=False)
    yield Case("k-space spike", "ghosting", _channels(_seeded(spike))(c))
    for amp in (0.2, 0.4, 0.7):
        yield Case(f"ghosts x{amp} along j", "ghosting", _ghost(c, amp, axis=1))
    yield Case("ghosts x0.4 along i", "ghosting", _ghost(c, 0.4, axis=0))
    for depth in (0.5, 0.8, 0.95):
        yield Case(f"dark band depth {depth}", "signal dropout", _band(c, depth))
    for gamma in (0.4, 0.7, 1.6, 2.5):
        yield Case(f"gamma {gamma}", "contrast", _channels(AdjustContrast(gamma))(c))


def fov_cases(s: Subject) -> Iterator[Case]:
    """Fields of view that cut the heart (the grid cropped, its affine moved with it)."""
    n = s.cine.shape[0]
    for text, window in (
        ("apex cut (i < 150)", (slice(0, 150), slice(0, n))),
        ("apex cut (i < 135)", (slice(0, 135), slice(0, n))),
        ("atria cut (i >= 110)", (slice(110, n), slice(0, n))),
        ("RV cut (j >= 110)", (slice(0, n), slice(110, n))),
    ):
        yield Case(f"field of view: {text}", "field of view", s.cine, window=window)


def geometry_cases(s: Subject) -> Iterator[Case]:
    """Header errors: the in-plane axes of the affine swapped or flipped about the centre."""
    a = s.la_img.affine
    centre = np.array([(s.cine.shape[0] - 1) / 2, (s.cine.shape[1] - 1) / 2, 0.0, 1.0])
    for text, cols, signs in (
        ("i and j swapped", (1, 0), (1, 1)),
        ("i flipped", (0, 1), (-1, 1)),
        ("j flipped", (0, 1), (1, -1)),
        ("i and j flipped", (0, 1), (-1, -1)),
    ):
        wrong = a.copy()
        wrong[:3, 0], wrong[:3, 1] = signs[0] * a[:3, cols[0]], signs[1] * a[:3, cols[1]]
        wrong[:3, 3] += (a @ centre)[:3] - (wrong @ centre)[:3]
        yield Case(f"affine: {text}", "wrong geometry", s.cine, affine=wrong)


# ---------------------------------------------------------------------------- one case


def segment(seg: Segmenter, case: Case, s: Subject, affine: np.ndarray):
    """The case's 4-chamber labels on the full grid (a crop pasted back) and its TTA Dice."""
    zooms = s.la_img.header.get_zooms()[:3]
    if case.window is None:
        res = seg.segment_array(case.cine, zooms, affine=affine)
        return res.labels, res.tta
    wi, wj = case.window
    moved = affine.copy()
    moved[:3, 3] = (affine @ np.array([wi.start, wj.start, 0.0, 1.0]))[:3]
    res = seg.segment_array(np.ascontiguousarray(case.cine[wi, wj]), zooms, affine=moved)
    labels = np.zeros(case.cine.shape, dtype=res.labels.dtype)
    labels[wi, wj] = res.labels
    return labels, res.tta


def crossview(labels: np.ndarray, affine: np.ndarray, s: Subject) -> dict:
    """The 4-chamber ventricles against our short axis frame by frame, paired as the QC pairs
    them: the lower of LV and RV per frame, and the verdict at the version-3 threshold (0.6)."""
    sa = sa_cine(s.sa, labels.shape[-1])
    lows = []
    for f in range(labels.shape[-1]):
        agree = ventricle_agreement(sa[..., f], s.sa_img.affine, labels[:, :, 0, f], affine)
        if agree.valid:
            lows.append(float(np.nan_to_num(min(agree.dice.values()), nan=0.0)))
    evidence = ViewEvidence(affines={"la_4ch": affine}, sa_labels=sa, sa_affine=s.sa_img.affine)
    strict = ViewQCThresholds(min_crossview_dice=0.6)
    verdict, _ = check_crossview({"la_4ch": labels}, evidence, strict)
    return {
        "min": min(lows, default=float("nan")),
        "median": float(np.median(lows)) if lows else float("nan"),
        "frames": len(lows),
        "passes_at_0.6": verdict.passed,
    }


def judge(seg: Segmenter, case: Case, s: Subject) -> dict:
    """Dice against the experts and the view QC's verdict, as the workflow would give it (the
    header's affine, right or wrong, everywhere)."""
    affine = s.la_img.affine if case.affine is None else case.affine
    la_img = nib.Nifti1Image(case.cine, affine, s.la_img.header)
    la_img.set_qform(affine)
    la_img.set_sform(affine)
    labels, tta = segment(seg, case, s, affine)
    scores = {
        p: {k: dice(labels[:, :, 0, f] == c, s.gt[p] == c) for c, k in rl.KEYS.items()}
        for p, f in (("ED", rl.ED), ("ES", rl.ES))
    }
    tag = "".join(ch if ch.isalnum() else "_" for ch in case.name)
    atria = rl._atria(labels, la_img, s.sa, s.sa_img, s.tmp, tag)
    qc = rl._trust(labels, la_img, sa_cine(s.sa, labels.shape[-1]), s.sa_img, tta, atria)
    masked = [k for k in qc["masked"] if k[:2] in ("LA", "RA")]
    leaked = [k for k, v in atria.items() if np.isfinite(v) and k not in masked]
    return {
        "name": case.name,
        "category": case.category,
        "model": case.model,
        "dice": scores,
        "worst_ventricle_dice": min(scores[p][k] for p in scores for k in ("lv", "rv")),
        "failure": any(scores[p][k] < FAIL_DICE for p in scores for k in ("lv", "rv")),
        # every atrial phenotype with a value masked (LA needs the 2-chamber view: NaN here)
        "flagged": bool(masked) and not leaked,
        "masked_any": bool(masked),
        "unmasked_atrial_values": leaked,
        "qc_reasons": qc["reasons"],
        "qc_checks": qc["checks"],
        "masked": masked,
        "crossview": crossview(labels, affine, s),
        "tta": tta,
        "atria": atria,
    }


def old_segmenter(commit: str, tmp: Path, threads: int) -> Segmenter | str:
    """An older shipped 4-chamber model from git history, or why it does not load today."""
    path = tmp / f"la_4ch_{commit}.pt"
    blob = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:{CHECKPOINT}"], capture_output=True, check=True
    ).stdout
    path.write_bytes(blob)
    try:
        return Segmenter(path, view="la_4ch", device="cpu", compute=ComputeOptions(threads=threads))
    except Exception as exc:  # an old checkpoint format today's code cannot read
        return f"{type(exc).__name__}: {exc}"


# ------------------------------------------------------------------------------ the table


def wilson(k: int, n: int) -> dict:
    if n == 0:
        return {"k": 0, "n": 0, "value": None, "ci95": None}
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return {"k": k, "n": n, "value": k / n, "ci95": [float(lo), float(hi)]}


def table(cases: list[dict], threshold: float = FAIL_DICE, flag: str = "flagged") -> dict:
    """The 2x2 outcome: failure (a ventricle's Dice below ``threshold``) against the QC's
    ``flag``."""
    f = [c for c in cases if c["worst_ventricle_dice"] < threshold]
    ok = [c for c in cases if not c["worst_ventricle_dice"] < threshold]
    tp = sum(bool(c[flag]) for c in f)
    tn = sum(not c[flag] for c in ok)
    return {
        "failure": f"LV or RV Dice < {threshold} at ED or ES",
        "flag": flag,
        "failure_flagged": tp,
        "failure_missed": len(f) - tp,
        "good_flagged": len(ok) - tn,
        "good_passed": tn,
        "sensitivity": wilson(tp, len(f)),
        "specificity": wilson(tn, len(ok)),
        "missed": [c["name"] for c in f if not c[flag]],
        "false_alarms": [c["name"] for c in ok if c[flag]],
    }


def tables(cases: list[dict]) -> dict:
    """The issue's table, then post-hoc ones: other Dice thresholds, the looser flag (any atrial
    IDP masked) and the cross-view check at the version-3 threshold 0.6 instead of 0.2."""
    for c in cases:
        c["flagged_crossview_0.6"] = c["flagged"] or c["crossview"]["passes_at_0.6"] is False
        base = cases[0]["atria"]["RAV_max"]
        c["RAV_max_change_vs_unmodified_pct"] = 100 * (c["atria"]["RAV_max"] / base - 1)
    return {
        "issue": table(cases),
        "post_hoc": {
            "dice_0.7": table(cases, 0.7),
            "dice_0.5": table(cases, 0.5),
            "any_atrial_mask": table(cases, flag="masked_any"),
            "crossview_0.6": table(cases, flag="flagged_crossview_0.6"),
            "crossview_0.6_dice_0.5": table(cases, 0.5, flag="flagged_crossview_0.6"),
        },
    }


def run_cases(la_seg: Segmenter, s: Subject, threads: int) -> tuple[list[dict], dict]:
    results = [judge(la_seg, Case("shipped model, unmodified cine", "model", s.cine), s)]
    skipped = {}
    for version, commit in OLD_MODELS.items():
        seg = old_segmenter(commit, s.tmp, threads)
        if isinstance(seg, str):
            skipped[f"{version} ({commit})"] = seg
            continue
        case = Case(f"{version} ({commit}), unmodified cine", "model", s.cine, model=version)
        results.append(judge(seg, case, s))
    for gen in (acquisition_cases, fov_cases, geometry_cases):
        results += [judge(la_seg, case, s) for case in gen(s)]
    return results, skipped


def _line(c: dict) -> str:
    d = c["dice"]
    ventricles = " ".join(f"{p} {d[p]['lv']:.2f}/{d[p]['rv']:.2f}" for p in ("ED", "ES"))
    verdict = ("FAIL" if c["failure"] else "ok  ") + (" flagged" if c["flagged"] else " passed ")
    cross = f"xv {c['crossview']['min']:.2f}/{c['crossview']['median']:.2f}"
    rav = f"RAV {c['RAV_max_change_vs_unmodified_pct']:+4.0f}%"
    return f"{c['name'][:36]:36s} LV/RV {ventricles} {cross} {rav} {verdict} {c['qc_reasons'][:50]}"


def summary(result: dict) -> None:
    for c in result["cases"]:
        print(_line(c))
    for name, t in (("issue", result["tables"]["issue"]), *result["tables"]["post_hoc"].items()):
        text = [f"{name} ({t['failure']}; {t['flag']}):"]
        for key in ("sensitivity", "specificity"):
            v = t[key]
            ci = f" (95 % {v['ci95'][0]:.2f}-{v['ci95'][1]:.2f})" if v["n"] else ""
            text.append(f"{key} {v['k']}/{v['n']}{ci}")
        print(" ".join(text))
    t = result["tables"]["issue"]
    print("missed failures:", t["missed"] or "none")
    print("false alarms:", t["false_alarms"] or "none")


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True
    ).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="results/benchmarks/real_view_qc.json")
    args = ap.parse_args()
    if not rl.DATA.is_dir():
        raise SystemExit(f"{rl.DATA} is absent: this benchmark needs ../shared/data/mnms2")
    torch.set_num_threads(args.threads)
    compute = ComputeOptions(threads=args.threads)
    la_seg = Segmenter(None, view="la_4ch", device="cpu", compute=compute)
    sa_seg = Segmenter(None, view="sa", device="cpu", compute=compute)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        s = load_subject(sa_seg, Path(tmp))
        cases, skipped = run_cases(la_seg, s, args.threads)
    result = {
        "data": "M&Ms-2 subject 001: 4-chamber cine, expert LV/myo/RV at ED (23) and ES (8)",
        "failure": f"LV or RV Dice < {FAIL_DICE} at ED or ES",
        "flagged": "check_views masks every atrial phenotype that has a value (LA needs the "
        "2-chamber view, absent here, so only the RA ones have values)",
        "checkpoints": {"la_4ch": str(la_seg.checkpoint), "sa": str(sa_seg.checkpoint)},
        "sha256": {"la_4ch": la_seg.sha256, "sa": sa_seg.sha256},
        "machine": f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"{args.threads} torch thread(s); VM shared with another job",
        "seconds": round(time.perf_counter() - start, 1),
        "git": _git("rev-parse", "HEAD")
        + (" + uncommitted src" if _git("status", "-s", "src") else ""),
        "skipped_models": skipped,
        "tables": tables(cases),
        "cases": cases,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float))
    summary(result)
    print(f"{len(cases)} cases in {result['seconds']} s; {out}")


if __name__ == "__main__":
    main()
