"""The execution profiles name real rules, and the SLURM profile's requests grow with each retry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "workflow/profiles"
RULES = {
    name
    for smk in (ROOT / "workflow/rules").glob("*.smk")
    for name in re.findall(r"^\s*rule (\w+):", smk.read_text(), re.M)
}


def profile(name: str) -> dict:
    return yaml.safe_load((PROFILES / name / "config.yaml").read_text())


def evaluate(expr, attempt: int):
    # The expressions Snakemake evaluates for a resource: Python with `attempt` defined.
    return eval(str(expr), {}, {"attempt": attempt})  # noqa: S307 (our own profile)


@pytest.mark.parametrize("name", ["default", "slurm"])
def test_profiles_set_threads_and_resources_of_existing_rules_only(name):
    prof = profile(name)
    named = set(prof.get("set-threads", {})) | set(prof.get("set-resources", {}))
    assert named <= RULES, f"{name} profile names unknown rules: {sorted(named - RULES)}"


def test_slurm_profile_grows_memory_and_time_with_each_attempt():
    prof = profile("slurm")
    assert prof["executor"] == "slurm" and prof["retries"] >= 1
    per_rule = {
        rule: {**prof["default-resources"], **res} for rule, res in prof["set-resources"].items()
    }
    per_rule["(default)"] = prof["default-resources"]
    for rule, res in per_rule.items():
        for key in ("mem_mb", "runtime"):
            values = [evaluate(res[key], a) for a in range(1, prof["retries"] + 2)]
            assert values == sorted(values) and values[0] < values[-1], (rule, key, values)


def test_slurm_profile_asks_a_gpu_for_segmentation():
    assert profile("slurm")["set-resources"]["segment_batch"]["gpu"] == 1
