"""How long Snakemake takes to plan (``snakemake -n``) a cohort of 1k to 100k subjects.

Writes a manifest of N subjects whose images are empty files (planning never opens them), the
cohort tables, and a config with ``cohort.source: manifest``; then times three dry runs of the real
workflow: ``first`` (from an empty working directory: validates the manifest, writes the batch plan and per-batch manifests),
``again`` (after ``--touch`` marks every output made; nothing changed, so nothing is planned
and no file is rewritten) and ``grown`` (100 subjects
added: new batches only). ``first`` and ``again`` are repeated (``--repeat``) and reported as
min and median. Results go to results/benchmarks/dag_planning.json.

    python benchmarks/dag_planning.py [--sizes 1000 10000 30000 100000] [--batch-size 25]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def write_cohort(folder: Path, eids: list[str]) -> Path:
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    for eid in eids:
        (images / f"{eid}.nii.gz").touch()
    pd.DataFrame({"eid": eids, "sa": [f"images/{e}.nii.gz" for e in eids]}).to_csv(
        folder / "manifest.csv", index=False
    )
    n = len(eids)
    pd.DataFrame(
        {
            "eid": eids,
            "age": [55 + i % 20 for i in range(n)],
            "sex": [i % 2 for i in range(n)],
            "height_cm": 170.0,
            "weight_kg": 75.0,
            "sbp": 130.0,
            "dbp": 80.0,
            "heart_rate": 65.0,
            "imaging_date": "2016-05-01",
        }
    ).to_csv(folder / "covariates.csv", index=False)
    pd.DataFrame(columns=["eid", "icd10", "date"]).to_csv(folder / "diagnoses.csv", index=False)
    pd.DataFrame(columns=["eid", "date", "icd10"]).to_csv(folder / "deaths.csv", index=False)
    return folder / "manifest.csv"


def dry_run(
    workdir: Path, config: Path, mode: str = "-n", outputs: list[str] | None = None
) -> tuple[float, dict[str, int]]:
    """Wall time of ``snakemake -n`` (or ``--touch``) and the planned job count per rule.

    ``outputs``, if given, receives the output paths of every planned job.
    """
    start = time.perf_counter()
    res = subprocess.run(
        [str(SNAKEMAKE), mode, "--cores", "1", "--configfile", str(config), "-d", str(workdir)]
        + ["-s", str(ROOT / "Snakefile")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        raise RuntimeError(f"dry run failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    if outputs is not None:
        for line in re.findall(r"^\s+output: (.*)$", res.stdout, re.M):
            outputs.extend(p.strip() for p in line.split(","))
    stats = re.search(r"Job stats:\njob\s+count\n[- ]+\n(.*?)\ntotal\s+(\d+)", res.stdout, re.S)
    jobs = {}
    if stats:
        for line in stats.group(1).splitlines():
            name, count = line.split()
            jobs[name] = int(count)
    return seconds, jobs


def summary(seconds: list[float]) -> dict[str, float]:
    """Min and median of repeated timings (the machine may be shared: the min is the cost)."""
    return {"min": round(min(seconds), 2), "median": round(statistics.median(seconds), 2)}


def measure(n: int, batch_size: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"dag{n}_") as tmp:
        tmp = Path(tmp)
        eids = [str(1000000 + i) for i in range(n)]
        manifest = write_cohort(tmp / "cohort", eids)
        config = tmp / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "cohort": {
                        "source": "manifest",
                        "manifest": str(manifest),
                        **{
                            k: str(tmp / "cohort" / f"{k}.csv")
                            for k in ("covariates", "diagnoses", "deaths")
                        },
                    },
                    "batching": {"batch_size": batch_size},
                }
            )
        )
        work = tmp / "work"
        firsts = []
        for _ in range(repeat):  # each from nothing: the plan and batch manifests are written
            shutil.rmtree(work, ignore_errors=True)
            outputs: list[str] = []
            seconds, jobs = dry_run(work, config, outputs=outputs)
            firsts.append(seconds)
        # Make every output (empty; a path without a suffix is a directory() output) and let
        # snakemake --touch order their times, so the cohort looks finished: the run after growing
        # it then plans what a finished run would re-run.
        for out in outputs:
            path = work / out
            if path.suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            else:
                path.mkdir(parents=True, exist_ok=True)
        dry_run(work, config, mode="--touch")
        agains = [dry_run(work, config) for _ in range(repeat)]
        write_cohort(tmp / "cohort", eids + [str(1000000 + n + i) for i in range(100)])
        grown, grown_jobs = dry_run(work, config)
    row = {
        "n_subjects": n,
        "batch_size": batch_size,
        "n_batches": -(-n // batch_size),
        "jobs": sum(jobs.values()),
        "jobs_per_rule": jobs,
        "seconds_first": summary(firsts),
        "seconds_again": summary([a for a, _ in agains]),
        "seconds_grown_by_100": round(grown, 2),
        "jobs_when_finished": sum(agains[-1][1].values()),
        "jobs_after_adding_100": grown_jobs,
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 30000, 100000])
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=3, help="timings per measurement")
    parser.add_argument("--out", type=Path, default=ROOT / "results/benchmarks/dag_planning.json")
    args = parser.parse_args()
    rows = [measure(n, args.batch_size, args.repeat) for n in args.sizes]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "dag_planning",
                "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "results": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
