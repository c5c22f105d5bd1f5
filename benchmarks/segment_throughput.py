"""Segmentation throughput: slices/s and peak memory against slice batch size for a UK Biobank-sized
cine (200 x 200 pixels at 1.8 mm, 10 slices x 50 frames), against a naive per-slice loop measured
in the same run, on the CPU and (when present) the GPU.

    python benchmarks/segment_throughput.py [--checkpoint PATH] [--image CINE.nii.gz]
        [--devices cpu cuda] [--threads 2] [--precisions auto float32] [--ensembles 0 1 3]
        [--out results/benchmarks/segment_throughput.json]

Measured, per device:
- each configuration runs once per ``--precisions`` value (the autocast dtype; ``auto``, the
  default: float32 on a CPU, float16 on a GPU);
- ``network``: the network alone on preprocessed, heart-cropped slices (``inference_mode``,
  channels-last, batch norm folded), for each slice batch size; ``network_nchw`` the same in
  PyTorch's default memory layout, at the end-to-end batch size;
- ``naive_loop``: one slice at a time through the network on the full ``roi`` grid with
  ``torch.no_grad`` (what a straightforward per-slice script does);
- ``end_to_end``: ``Segmenter.segment_array`` on the whole cine (preprocess, first pass,
  heart crop, network, inverse resampling, largest component, hole filling) without TTA;
  ``end_to_end_ensK`` the same with the QC's TTA measure and a K-flip ensemble (K = 0: the
  flipped passes run at ED and ES only, for the QC measure; K >= 1: every slice is predicted
  K + 1 times and the QC measure comes from those passes).
Peak memory: CPU resident set (ru_maxrss) of a fresh subprocess per configuration; GPU
``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from cardiopheno.segment.infer import ComputeOptions, PassOptions, Segmenter  # noqa: E402
from cardiopheno.segment.transforms import context_index  # noqa: E402

UKB_SHAPE = (200, 200, 10, 50)
UKB_SPACING = (1.8, 1.8, 10.0)


def ukb_sized_cine(image: str | None, seed: int = 0) -> tuple[np.ndarray, tuple[float, ...]]:
    """A realistic cine of UK Biobank size: a synthetic subject (cardiopheno.synth) padded to
    200 x 200 with its own background noise and cycled to 10 slices x 50 frames; or ``image``."""
    if image:
        from cardiopheno.io.nifti import load_cine

        data = load_cine(image).data
    else:
        import tempfile

        import pandas as pd

        from cardiopheno.io.nifti import load_cine
        from cardiopheno.synth.cohort import generate_cohort

        manifest = generate_cohort(
            Path(tempfile.mkdtemp()), 1, seed=seed, fault_fraction=0.0, n_jobs=1
        )
        data = load_cine(
            manifest.parent / pd.read_csv(manifest, dtype={"eid": str})["sa"].iloc[0]
        ).data
    x, y, z, t = data.shape
    rng = np.random.default_rng(seed)
    noise = float(np.percentile(data, 5)) + 1.0
    out = rng.rayleigh(noise, size=UKB_SHAPE).astype(np.float32)
    ox, oy = max(0, (200 - x) // 2), max(0, (200 - y) // 2)
    cx, cy = min(x, 200), min(y, 200)
    zi = np.arange(10) % z
    ti = np.round(np.linspace(0, t - 1, 50)).astype(int)
    out[ox : ox + cx, oy : oy + cy] = data[:cx, :cy][:, :, zi][:, :, :, ti]
    return out, (1.8, 1.8, 10.0)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_call(fn, device, min_seconds: float = 2.0, min_reps: int = 2) -> float:
    fn()  # warm-up
    _sync(device)
    reps, t0 = 0, time.perf_counter()
    while reps < min_reps or time.perf_counter() - t0 < min_seconds:
        fn()
        reps += 1
    _sync(device)
    return (time.perf_counter() - t0) / reps


def measure(kind: str, batch: int, args) -> dict:
    """One configuration, in this process."""
    device = torch.device(args.device)
    data, spacing = ukb_sized_cine(args.image)
    n_slices = data.shape[2] * data.shape[3]
    seg = Segmenter(
        args.checkpoint,
        args.device,
        compute=ComputeOptions(slice_batch=batch, precision=args.precision, threads=args.threads),
        passes=PassOptions(
            tta=kind.startswith("end_to_end_ens"),
            flip_ensemble=int(kind[len("end_to_end_ens") :]) if "_ens" in kind else 0,
        ),
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if kind in ("network", "network_nchw"):
        if kind == "network_nchw":
            seg.memory_format = torch.contiguous_format
            seg.model = seg.model.to(memory_format=seg.memory_format)
        prep = seg.prepare(data, spacing)
        first = seg.predict_labels(prep.stack[: data.shape[2]])
        from cardiopheno.segment.transforms import heart_center

        stack, _ = seg.pipe.crop_to_heart(prep.stack, heart_center(first.numpy(), seg.pre_cfg.roi))
        x = torch.as_tensor(stack).as_subclass(torch.Tensor).contiguous()
        z = data.shape[2]
        seconds = time_call(lambda: seg.predict_labels(x, slices_per_frame=z), device)
    elif kind == "naive_loop":
        prep = seg.prepare(data, spacing)
        x = torch.as_tensor(prep.stack).as_subclass(torch.Tensor)
        model = seg.model.to(memory_format=torch.contiguous_format)
        z = data.shape[2]
        # each slice with its neighbours for a 2.5D model (NetworkConfig.context), and its twin
        # in the first frame for a model with a reference channel
        ctx = context_index(np.arange(x.shape[0]) // z, seg.net_cfg.context)
        if seg.net_cfg.reference:
            ctx = np.concatenate([ctx, (np.arange(x.shape[0]) % z)[:, None]], axis=1)

        def loop():
            with torch.no_grad():
                for i in range(x.shape[0]):
                    model(x[ctx[i]][None].to(device)).argmax(1).cpu()

        seconds = time_call(loop, device, min_seconds=1.0, min_reps=1)
    else:
        seconds = time_call(lambda: seg.segment_array(data, spacing), device, 4.0, 2)
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "kind": kind,
        "device": args.device,
        "slice_batch": batch,
        "precision": "float32 (plain model)" if kind == "naive_loop" else seg.precision,
        "threads": args.threads,
        "slices": n_slices,
        "seconds_per_cine": seconds,
        "slices_per_s": n_slices / seconds,
        "peak_memory_mib": peak,
        "peak_memory_kind": "cuda max allocated" if device.type == "cuda" else "process RSS",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--image", default=None)
    ap.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32, 64, 128, 256])
    ap.add_argument("--e2e-batch", type=int, default=None, help="slice batch of end-to-end runs")
    ap.add_argument(
        "--ensembles",
        nargs="+",
        type=int,
        default=[0, 1, 3],
        help="flip-ensemble sizes (end to end)",
    )
    ap.add_argument(
        "--precisions",
        nargs="+",
        default=["auto"],
        help="network arithmetic to measure: auto, float32, bfloat16, float16",
    )
    ap.add_argument("--out", default=str(REPO / "results/benchmarks/segment_throughput.json"))
    ap.add_argument("--machine", default="", help="words describing the machine, for the record")
    ap.add_argument("--single", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.single:
        kind, batch = args.single.split(":")
        print(json.dumps(measure(kind, int(batch), args)))
        return 0
    plan = []
    for dev in args.devices:
        if dev == "cuda" and not torch.cuda.is_available():
            continue
        plan += [(dev, "auto", "naive_loop", 1)]
        e2e = args.e2e_batch or (32 if dev == "cpu" else 256)
        for prec in args.precisions:
            plan += [(dev, prec, "network", b) for b in args.batches]
            plan += [(dev, prec, "network_nchw", e2e), (dev, prec, "end_to_end", e2e)]
            plan += [(dev, prec, f"end_to_end_ens{k}", e2e) for k in args.ensembles]
    info = {
        "machine": args.machine or platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cine_shape": list(UKB_SHAPE),
        "pixel_mm": 1.8,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for dev, prec, kind, batch in plan:
        cmd = [
            sys.executable,
            __file__,
            "--single",
            f"{kind}:{batch}",
            "--device",
            dev,
            "--threads",
            str(args.threads),
            "--precision",
            prec,
        ]
        if args.checkpoint:
            cmd += ["--checkpoint", args.checkpoint]
        if args.image:
            cmd += ["--image", args.image]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode:
            print(res.stderr[-2000:], file=sys.stderr)
            continue
        row = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{dev:5s} {row['precision'][:8]:8s} {kind:16s} batch {batch:4d}: {row['slices_per_s']:8.1f} slices/s, "
            f"peak {row['peak_memory_mib']:.0f} MiB",
            flush=True,
        )
        # written after every configuration, so a run stopped at a time limit keeps its numbers
        out.write_text(json.dumps({"info": info, "results": rows}, indent=1))
    out.write_text(json.dumps({"info": info, "results": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
