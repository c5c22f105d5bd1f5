"""Compare two workflow result folders: same files, equal tables (the SLURM test's check).

    python tools/slurm/compare_results.py RUN_A RUN_B [--skip PREFIX ...]

RUN_A and RUN_B are Snakemake working directories. Every file under results/ (logs excepted) must
exist in both; Parquet and CSV tables must hold equal contents once either run's folder is
written as RUN in text columns (the per-batch manifests hold absolute paths); other files must have
equal bytes (.gz files once decompressed: a gzip header carries the time it was written); figures
and HTML, which embed dates, are not compared, nor are timing columns (``seconds``,
``*_seconds``). Exits 1 listing every difference.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

SKIP_PARTS = {"logs", "benchmarks"}


def files(root: Path, skip: tuple[str, ...] = ()) -> set[str]:
    base = root / "results"
    return {
        rel
        for p in base.rglob("*")
        if p.is_file()
        and not SKIP_PARTS & set(p.relative_to(base).parts)
        and not (rel := str(p.relative_to(base))).startswith(skip)
    }


def table(path: Path, roots: tuple[Path, ...]) -> pd.DataFrame:
    df = pq.read_table(path).to_pandas() if path.suffix == ".parquet" else pd.read_csv(path)
    prefixes = [str(r.resolve()) for r in roots]

    def norm(v):
        if isinstance(v, str):
            for prefix in prefixes:
                v = v.replace(prefix, "RUN")
        return v

    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].map(norm)
    return df.drop(columns=[c for c in df.columns if is_timing(c)])


def is_timing(column: str) -> bool:
    """How long a step took (``seconds``, ``*_seconds``): a measurement of the run, not a result."""
    return column == "seconds" or column.endswith("_seconds")


def same(rel: str, a: Path, b: Path) -> str | None:
    fa, fb = a / "results" / rel, b / "results" / rel
    if rel.endswith((".parquet", ".csv")):
        try:
            pd.testing.assert_frame_equal(table(fa, (a, b)), table(fb, (a, b)), check_exact=True)
        except AssertionError as exc:
            return f"{rel}: tables differ: {str(exc).splitlines()[0:3]}"
        return None
    if rel.endswith(".gz"):
        # Compare what was compressed: a gzip header carries the time it was written.
        if gzip.decompress(fa.read_bytes()) != gzip.decompress(fb.read_bytes()):
            return f"{rel}: contents differ"
        return None
    if rel.endswith((".png", ".svg", ".html")):
        return None  # renderers embed dates and are checked by their own tests
    if fa.read_bytes() != fb.read_bytes():
        return f"{rel}: bytes differ"
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument(
        "--skip", nargs="*", default=[], help="paths under results/ (prefixes) not to compare"
    )
    args = parser.parse_args(argv[1:])
    a, b = args.run_a, args.run_b
    fa, fb = files(a, tuple(args.skip)), files(b, tuple(args.skip))
    problems = [f"only in {a}: {r}" for r in sorted(fa - fb)]
    problems += [f"only in {b}: {r}" for r in sorted(fb - fa)]
    for rel in sorted(fa & fb):
        if (msg := same(rel, a, b)) is not None:
            problems.append(msg)
    n_tables = sum(r.endswith((".parquet", ".csv")) for r in fa & fb)
    if problems:
        print(f"{len(problems)} difference(s) between {a} and {b}:")
        print("\n".join(f"  {p}" for p in problems))
        return 1
    print(f"{len(fa)} files the same in both runs ({n_tables} tables compared by content)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
