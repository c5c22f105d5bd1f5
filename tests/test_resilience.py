"""A run killed mid-way (SIGKILL to Snakemake and every job) completes when started again, leaves no
partial output behind, and ends with the same results as a run that was never interrupted.

The tiny demo cohort (synthetic, 3 subjects, batches of 1) is run with the local profile. The kill
comes while the cohort generator is writing subject images, the step with the most files in flight.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from cardiopheno.io.atomic import remove_stale

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
CONFIG = {
    "cohort": {"source": "synthetic"},
    "synthetic": {"n_subjects": 3, "seed": 0, "fault_fraction": 0.0},
    "batching": {"batch_size": 1},
}
# What the test runs: the demo's default target when the whole pipeline can run here; the cohort
# and its batches otherwise (CARDIOPHENO_RESILIENCE_TARGETS="" means the default target).
TARGETS = os.environ.get(
    "CARDIOPHENO_RESILIENCE_TARGETS", "results/batches/index.csv results/figures/synth_montage.png"
).split()


def load_compare():
    spec = importlib.util.spec_from_file_location(
        "compare_results", ROOT / "tools/slurm/compare_results.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def command(workdir: Path, config: Path) -> list[str]:
    return [
        str(SNAKEMAKE),
        "--workflow-profile",
        str(ROOT / "workflow/profiles/default"),
        "--cores",
        "2",
        "--configfile",
        str(config),
        "-d",
        str(workdir),
        "-s",
        str(ROOT / "Snakefile"),
        "--",
        *TARGETS,
    ]


def run(workdir: Path, config: Path, *extra: str) -> None:
    res = subprocess.run(
        command(workdir, config)[: -1 - len(TARGETS)] + [*extra, "--", *TARGETS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def kill_when(workdir: Path, config: Path, ready, timeout: float = 300) -> None:
    """Start the workflow and SIGKILL it and all its descendants as soon as ``ready()`` holds."""
    proc = subprocess.Popen(
        command(workdir, config),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                pytest.fail("the workflow finished before the point where the test kills it")
            if time.monotonic() > deadline:
                pytest.fail("the workflow never reached the point where the test kills it")
            time.sleep(0.05)
        # Jobs may run in sessions of their own: collect the whole tree first, then kill it.
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        for p in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    psutil.wait_procs([p for p in tree if p.is_running()], timeout=10)


def killed_atomic_write(target: Path) -> Path:
    """Die by SIGKILL in the middle of ``atomic_path(target)``; return the temporary file left."""
    code = (
        "import os, signal, sys\n"
        "from cardiopheno.io.atomic import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_text('half a table')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(target)], check=False)
    assert res.returncode == -signal.SIGKILL
    (left,) = [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.")]
    return left


def test_remove_stale_deletes_what_a_killed_atomic_write_left_and_nothing_else(tmp_path):
    target = tmp_path / "results/phenotypes/batches/b0000.parquet"
    target.parent.mkdir(parents=True)
    left = killed_atomic_write(target)
    assert not target.exists() and left.read_text() == "half a table"
    keep = [tmp_path / "results/.hidden.tmp", tmp_path / "results/x.tmp.parquet"]
    for path in keep:
        path.write_text("not ours")
    assert remove_stale(tmp_path / "results") == [left]
    assert not left.exists() and all(p.exists() for p in keep)
    assert remove_stale(tmp_path / "nowhere") == []


def leftovers(workdir: Path) -> list[str]:
    """Temporary files of atomic writes (io.atomic) that a killed job left behind."""
    return sorted(
        str(p.relative_to(workdir)) for p in (workdir / "results").rglob(".*.tmp*") if p.is_file()
    )


def test_killed_run_resumes_to_the_same_results_without_partial_output(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    run(clean, config)

    subjects = killed / "results/cohort/subjects"
    kill_when(killed, config, lambda: subjects.is_dir() and any(subjects.iterdir()))
    # The kill left an unfinished job: its outputs are partial and recorded as incomplete.
    assert not (killed / "results/cohort/manifest.csv").exists()
    assert any((killed / ".snakemake/incomplete").iterdir())
    # A job writing a table outside any directory() output, killed the same way, leaves a
    # temporary file that Snakemake does not know about.
    (killed / "results/phenotypes/batches").mkdir(parents=True)
    killed_atomic_write(killed / "results/phenotypes/batches/b0000.parquet")
    assert leftovers(killed)

    # Recovery is Snakemake's own: release the killed run's stale lock (--unlock), then run again;
    # the default profile's rerun-incomplete deletes and regenerates what the killed job had begun.
    run(killed, config, "--unlock")
    run(killed, config)
    assert leftovers(killed) == []
    compare = load_compare()
    assert compare.main(["compare", str(clean), str(killed)]) == 0
