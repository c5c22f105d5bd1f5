"""A bad config or manifest stops the workflow before any job, naming the key or the problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def dry_run(tmp_path, config: dict) -> subprocess.CompletedProcess:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [
            str(SNAKEMAKE),
            "-n",
            "--cores",
            "1",
            "--configfile",
            str(cfg),
            "-d",
            str(tmp_path / "w"),
            "-s",
            str(ROOT / "Snakefile"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_demo_config_plans(tmp_path):
    res = dry_run(tmp_path, yaml.safe_load((ROOT / "config/config.yaml").read_text()))
    assert res.returncode == 0, res.stdout


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"cohort": {"source": "synthetic"}, "synthetic": {"n_subjects": "many"}},
            ["'many' is not of type 'integer'", "['synthetic']['n_subjects']"],
        ),
        (
            {"cohort": {"source": "synthetic"}, "synthetic": {"n_subject": 5}},
            ["'n_subject' was unexpected", "['synthetic']"],
        ),
        ({"cohort": {"source": "synthetic"}, "segmentaton": {}}, ["'segmentaton' was unexpected"]),
        (
            {"cohort": {"source": "somewhere"}},
            ["'somewhere' is not one of", "['cohort']['source']"],
        ),
        ({"cohort": {"source": "manifest"}}, ["'manifest' is a required property"]),
        (
            {"cohort": {"source": "synthetic"}, "batching": {"batch_size": 0}},
            ["0 is less than the minimum of 1", "['batching']['batch_size']"],
        ),
        (
            {"cohort": {"source": "synthetic"}, "segmentation": {"flip_ensemble": 5}},
            ["5 is greater than the maximum of 3", "['segmentation']['flip_ensemble']"],
        ),
        (
            {"cohort": {"source": "synthetic"}, "segmentation": {"precision": "half"}},
            ["'half' is not one of", "['segmentation']['precision']"],
        ),
        (
            {"cohort": {"source": "synthetic"}, "segmentation": {"convention": "smooth"}},
            ["'smooth' is not one of", "['segmentation']['convention']"],
        ),
        (
            {"cohort": {"source": "synthetic"}, "segmentation": {"train": {"augment": "mild"}}},
            ["'mild' is not one of", "['segmentation']['train']['augment']"],
        ),
    ],
)
def test_bad_config_names_the_key(tmp_path, config, expected):
    res = dry_run(tmp_path, config)
    assert res.returncode != 0
    for text in expected:
        assert text in res.stdout, res.stdout


def test_bad_manifest_fails_before_any_job_listing_every_problem(tmp_path):
    (tmp_path / "a.nii.gz").write_bytes(b"x")
    (tmp_path / "a2.nii.gz").write_bytes(b"x")
    pd.DataFrame({"eid": ["1", "1", "2"], "sa": ["a.nii.gz", "a2.nii.gz", "b.nii.gz"]}).to_csv(
        tmp_path / "manifest.csv", index=False
    )
    tables = {k: str(tmp_path / f"{k}.csv") for k in ("covariates", "diagnoses", "deaths")}
    res = dry_run(
        tmp_path,
        {"cohort": {"source": "manifest", "manifest": str(tmp_path / "manifest.csv"), **tables}},
    )
    assert res.returncode != 0
    assert "duplicate eid(s): 1" in res.stdout
    assert "sa: file(s) not found for 2" in res.stdout


def test_stats_demo_config_plans_the_statistics_without_imaging(tmp_path):
    res = dry_run(tmp_path, yaml.safe_load((ROOT / "config/stats_demo.yaml").read_text()))
    assert res.returncode == 0, res.stdout
    for rule in ("synth_tables", "phewas", "survival", "figures_phewas", "report_overview"):
        assert rule in res.stdout, rule
    for rule in ("synth_cohort", "segment_batch", "qc_merge", "run_summary"):
        assert rule not in res.stdout, rule


def test_a_valid_manifest_cohort_plans_the_report_with_what_the_door_found(tmp_path):
    for eid in ("1", "2"):
        (tmp_path / f"sa_{eid}.nii.gz").write_bytes(b"x")  # opened per subject, not at the door
    tables = {
        "manifest": pd.DataFrame({"eid": ["1", "2"], "sa": ["sa_1.nii.gz", "sa_2.nii.gz"]}),
        "covariates": pd.DataFrame(
            {
                "eid": ["1"],
                "age": [60.0],
                "sex": [1],
                "height_cm": [180.0],
                "weight_kg": [80.0],
                "imaging_date": ["2015-01-01"],
            }
        ),  # fmt: skip
        "diagnoses": pd.DataFrame({"eid": ["1"], "icd10": ["I21"], "date": ["2017-01-01"]}),
        "deaths": pd.DataFrame({"eid": ["1"], "date": ["2019-05-05"], "icd10": ["I50"]}),
    }
    cohort = {"source": "manifest"}
    for name, table in tables.items():
        table.to_csv(tmp_path / f"{name}.csv", index=False)
        cohort[name] = str(tmp_path / f"{name}.csv")
    res = dry_run(tmp_path, {"cohort": cohort})
    assert res.returncode == 0, res.stdout
    assert "report_overview" in res.stdout
    door = tmp_path / "w/results/run_summary"
    assert pd.read_csv(door / "door.csv")["table"].tolist()[:2] == ["manifest", "covariates"]
    assert pd.read_csv(door / "door_subjects.csv", dtype=str)["eid"].tolist() == ["2"]
