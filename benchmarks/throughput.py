"""End-to-end throughput: the demo workflow on an N-subject synthetic cohort, per stage.

Runs Snakemake (local profile) on a synthetic cohort of ``--n-subjects`` and records, from the run's
log and from sampling the process tree every half second:
- the wall time of the whole run and its peak memory (resident set of Snakemake and all its jobs);
- per rule: jobs, job-seconds (sum of each job's wall time), the span from the first job's start to
  the last one's end, threads per job, core-seconds per subject and the peak memory of one job.
Then extrapolates each stage to ``--target-subjects`` on a cluster of ``--nodes`` nodes of
``--cores-per-node`` cores: per-batch stages scale with the subjects and spread over the nodes
(core-seconds / all cores), cohort-level stages do not spread (their measured time, scaled with the
subjects: an upper bound where a stage has a fixed cost); the demo's own steps (generating the
cohort, its montage, splitting it) are left out. Job times come from the log's timestamps (1 s
resolution). Writes results/benchmarks/throughput.json.

    python benchmarks/throughput.py --n-subjects 1000 --cores 2 [--target ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
SCRIPT = re.compile(r"\.snakemake/scripts/tmp[^/]*?\.(\w+)\.py")
STAMP = "%a %b %d %H:%M:%S %Y"
# Demo-only steps (a real cohort is not generated, and its batch plan is written at parse time):
# timed, but left out of the extrapolation.
DEMO_ONLY = {"synth_cohort", "synth_montage", "split_batches"}


class TreeSampler(threading.Thread):
    """Peak resident memory of a process tree, in total and per job script."""

    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.every = every
        self.peak_total = 0
        self.peak_by_script: dict[str, int] = defaultdict(int)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            total = 0
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                    cmd = " ".join(proc.cmdline())
                except psutil.Error:
                    continue
                total += rss
                if match := SCRIPT.search(cmd):
                    name = match.group(1)
                    self.peak_by_script[name] = max(self.peak_by_script[name], rss)
            self.peak_total = max(self.peak_total, total)
            self.done.wait(self.every)


def job_times(log: str) -> list[dict]:
    """(rule, threads, start, end) of each finished job in a Snakemake log."""
    starts, ends = {}, {}
    blocks = re.split(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]\n", log, flags=re.M)
    for stamp, body in zip(blocks[1::2], blocks[2::2], strict=True):
        when = datetime.strptime(re.sub(" +", " ", stamp), STAMP)
        if started := re.match(r"(?:local)?rule (\w+):\n", body):  # a job's start
            jobid = re.search(r"^\s+jobid: (\d+)$", body, re.M).group(1)
            threads = re.search(r"^\s+threads: (\d+)$", body, re.M)
            starts[jobid] = (started.group(1), int(threads.group(1)) if threads else 1, when)
        # A job's end can be reported inside another job's block (no timestamp line of its own).
        for finished in re.finditer(r"^Finished jobid: (\d+)", body, re.M):
            ends[finished.group(1)] = when
    return [
        {"rule": rule, "threads": threads, "start": start, "end": ends[jobid]}
        for jobid, (rule, threads, start) in starts.items()
        if jobid in ends
    ]


def per_stage(jobs: list[dict], peaks: dict[str, int], n_subjects: int) -> dict[str, dict]:
    stages: dict[str, dict] = {}
    for rule in sorted({j["rule"] for j in jobs}):
        mine = [j for j in jobs if j["rule"] == rule]
        seconds = [(j["end"] - j["start"]).total_seconds() for j in mine]
        threads = max(j["threads"] for j in mine)
        stages[rule] = {
            "jobs": len(mine),
            "threads": threads,
            "job_seconds": sum(seconds),
            "span_seconds": (
                max(j["end"] for j in mine) - min(j["start"] for j in mine)
            ).total_seconds(),
            "core_seconds_per_subject": round(sum(seconds) * threads / n_subjects, 3),
            "peak_job_rss_mb": round(peaks.get(rule, 0) / 2**20, 1) or None,
        }
    return stages


def extrapolate(stages: dict, n: int, target: int, nodes: int, cores: int) -> dict:
    """Stage wall times for ``target`` subjects on ``nodes`` x ``cores`` (ideal batch parallelism)."""
    out = {}
    for rule, s in stages.items():
        if rule in DEMO_ONLY or rule == "all":
            continue
        if s["jobs"] > 1:  # per-batch: core-seconds spread over every core of the cluster
            seconds = s["core_seconds_per_subject"] * target / (nodes * cores)
        else:  # cohort-level: one job, scaled with the cohort
            seconds = s["job_seconds"] * target / n
        out[rule] = round(seconds / 3600, 2)
    return {"hours_per_stage": out, "hours_total": round(sum(out.values()), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-subjects", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=ROOT / "results/benchmarks/throughput_run")
    parser.add_argument("--out", type=Path, default=ROOT / "results/benchmarks/throughput.json")
    parser.add_argument("--target", nargs="*", default=[], help="targets (default: rule all)")
    parser.add_argument(
        "--checkpoint", default="", help="segmentation checkpoint (default: shipped)"
    )
    parser.add_argument("--target-subjects", type=int, default=30000)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--cores-per-node", type=int, default=32)
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    config = args.workdir / "throughput_config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "cohort": {"source": "synthetic"},
                "synthetic": {"n_subjects": args.n_subjects, "seed": 0},
                "batching": {"batch_size": args.batch_size},
                "segmentation": {"checkpoint": args.checkpoint},
            }
        )
    )
    log = args.workdir / "snakemake.log"
    cmd = [
        str(SNAKEMAKE),
        "--workflow-profile",
        str(ROOT / "workflow/profiles/default"),
        "--cores",
        str(args.cores),
        "--configfile",
        str(config),
        "-d",
        str(args.workdir),
        "-s",
        str(ROOT / "Snakefile"),
        "--",
        *args.target,
    ]
    start = time.perf_counter()
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        rc = proc.wait()
        sampler.done.set()
        sampler.join()
    wall = time.perf_counter() - start
    if rc != 0:
        print(f"workflow failed (exit {rc}); see {log}", file=sys.stderr)
        return rc

    jobs = job_times(log.read_text())
    stages = per_stage(jobs, sampler.peak_by_script, args.n_subjects)
    result = {
        "benchmark": "throughput",
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
        "cpus": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "n_subjects": args.n_subjects,
        "batch_size": args.batch_size,
        "cores": args.cores,
        "targets": args.target or ["all"],
        "wall_seconds": round(wall, 1),
        "peak_rss_mb": round(sampler.peak_total / 2**20, 1),
        "stages": stages,
        "extrapolation": {
            "subjects": args.target_subjects,
            "nodes": args.nodes,
            "cores_per_node": args.cores_per_node,
            **extrapolate(
                stages, args.n_subjects, args.target_subjects, args.nodes, args.cores_per_node
            ),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
