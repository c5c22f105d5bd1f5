"""Growing a finished cohort re-runs only the batches of the new subjects plus the cohort-level steps.

The real workflow plans a tiny user cohort (``cohort.source: manifest``; images are empty files,
which planning never opens). Its outputs are then made and dated in order (``snakemake --touch``),
so Snakemake sees a finished run; after that, adding subjects or editing one subject's covariates
must plan per-batch jobs only for the batches those subjects are in.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
TABLES = ("covariates", "diagnoses", "deaths")


def write_cohort(folder: Path, eids: list[str], age: dict[str, float] | None = None) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for eid in eids:
        (folder / "images" / f"{eid}.nii.gz").touch()
    pd.DataFrame({"eid": eids, "sa": [f"images/{e}.nii.gz" for e in eids]}).to_csv(
        folder / "manifest.csv", index=False
    )
    age = age or {}
    pd.DataFrame(
        {
            "eid": eids,
            "age": [age.get(e, 60.0) for e in eids],
            "sex": [i % 2 for i in range(len(eids))],
            "height_cm": 170.0,
            "weight_kg": 70.0,
            "sbp": 130.0,
            "dbp": 80.0,
            "heart_rate": 60.0,
            "imaging_date": "2016-01-01",
        }
    ).to_csv(folder / "covariates.csv", index=False)
    pd.DataFrame(columns=["eid", "icd10", "date"]).to_csv(folder / "diagnoses.csv", index=False)
    pd.DataFrame(columns=["eid", "date", "icd10"]).to_csv(folder / "deaths.csv", index=False)


def snakemake(workdir: Path, config: Path, *args: str) -> str:
    res = subprocess.run(
        [str(SNAKEMAKE), *args, "--cores", "1", "--configfile", str(config), "-d", str(workdir)]
        + ["-s", str(ROOT / "Snakefile")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def planned_jobs(text: str) -> list[tuple[str, str | None]]:
    """(rule, batch or None) for each job of a dry run's output."""
    jobs = []
    for block in re.split(r"\n(?=rule \w+:\n)", text):
        head = re.match(r"rule (\w+):\n", block)
        if head:
            batch = re.search(r"wildcards: .*?batch=(b\d{4})", block)
            jobs.append((head.group(1), batch.group(1) if batch else None))
    return jobs


def make_outputs(workdir: Path, text: str) -> None:
    """Create every output the dry run lists (a path without a suffix is a directory())."""
    for line in re.findall(r"^\s+output: (.*)$", text, re.M):
        for out in (p.strip() for p in line.split(",")):
            path = workdir / out
            if path.suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            else:
                path.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def finished(tmp_path):
    """A finished run (outputs made and dated by --touch) of 10 subjects in batches of 4."""
    cohort, work = tmp_path / "cohort", tmp_path / "work"
    eids = [str(1000000 + i) for i in range(10)]
    write_cohort(cohort, eids)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "cohort": {
                    "source": "manifest",
                    "manifest": str(cohort / "manifest.csv"),
                    **{t: str(cohort / f"{t}.csv") for t in TABLES},
                },
                "batching": {"batch_size": 4},
            }
        )
    )
    first = snakemake(work, config, "-n")
    per_batch = {b for _, b in planned_jobs(first) if b}
    assert per_batch == {"b0000", "b0001", "b0002"}
    make_outputs(work, first)
    snakemake(work, config, "--touch")
    assert planned_jobs(snakemake(work, config, "-n")) == []
    return cohort, work, config, eids


def test_adding_subjects_reruns_only_their_new_batch_and_cohort_steps(finished):
    cohort, work, config, eids = finished
    batches = work / "results/batches"
    before = {p.name: p.stat().st_mtime_ns for p in batches.glob("b*.csv")}
    write_cohort(cohort, eids + ["1000010", "1000011"])
    jobs = planned_jobs(snakemake(work, config, "-n"))
    assert {b for _, b in jobs if b} == {"b0003"}, jobs
    cohort_level = {r for r, b in jobs if b is None}
    assert "all" in cohort_level and cohort_level <= {r for r, _ in jobs}
    # Rules that run once per batch ran for the new batch only, once each.
    per_batch_rules = [r for r, b in jobs if b]
    assert len(per_batch_rules) == len(set(per_batch_rules))
    after = {p.name: p.stat().st_mtime_ns for p in batches.glob("b*.csv")}
    assert {n: after[n] for n in before} == before  # old batch manifests untouched
    assert pd.read_csv(batches / "b0003.csv", dtype=str)["eid"].tolist() == ["1000010", "1000011"]


def test_editing_one_subjects_covariates_reruns_only_jobs_reading_them_for_its_batch(finished):
    cohort, work, config, eids = finished
    write_cohort(cohort, eids, age={"1000005": 71.0})  # in b0001
    jobs = planned_jobs(snakemake(work, config, "-n"))
    assert {b for _, b in jobs if b} == {"b0001"}, jobs
    assert ("segment_batch", "b0001") not in jobs  # segmentation does not read covariates
