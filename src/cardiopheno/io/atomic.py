"""Atomic file writes: a reader (or a killed run) never sees half a file."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file keeps the target's suffixes (``.nii.gz``, ``.parquet``) so that libraries
    choosing a format by extension still do the right thing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


# mkstemp's names for atomic_path: ".<target name>.<8 random characters>.tmp<target suffixes>".
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[^/]*)?$")


def remove_stale(root: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that ``atomic_path`` left under ``root`` when a process was killed.

    A SIGKILL skips the ``finally`` that removes them. Call it only when no writer can be running
    (the workflow's ``onstart``, which runs once Snakemake holds its lock on the directory).
    Returns the files removed.
    """
    removed = []
    for path in Path(root).rglob(".*.tmp*"):
        if path.is_file() and _TEMP_NAME.match(path.name):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
