"""Input paths as tables and reports show them: never absolute (real paths often carry names).

Jobs read absolute paths (the validated manifest resolves them), but a failure reason written into
the segment or QC table, ``counts.csv`` or a montage shows a path relative to the manifest's
folder, or relative to the working directory when it lies outside that folder, or else the file
name alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path


def input_root(config: Mapping | None) -> Path | None:
    """The folder of the user's manifest (``cohort.manifest``), or None for the demo cohort."""
    cohort = (config or {}).get("cohort") or {}
    if cohort.get("source") != "manifest" or not cohort.get("manifest"):
        return None
    return Path(os.path.abspath(cohort["manifest"])).parent


def display_path(path: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """``path`` relative to ``root`` (the manifest's folder) or to the working directory when it
    lies inside either, else its file name alone."""
    path = os.path.abspath(path)
    for base in (root, os.getcwd()):
        if base is None:
            continue
        base = os.path.abspath(base)
        if os.path.commonpath([path, base]) == base and path != base:
            return os.path.relpath(path, base)
    return os.path.basename(path)


def scrub_paths(
    text: str, paths: Iterable[str | os.PathLike | None], root: str | os.PathLike | None = None
) -> str:
    """``text`` with every occurrence of ``paths`` (and of ``root/``) shown by :func:`display_path`."""
    for path in sorted({str(p) for p in paths if p}, key=len, reverse=True):
        if os.path.isabs(path):
            text = text.replace(path, display_path(path, root))
    if root is not None:
        text = text.replace(os.path.abspath(root).rstrip(os.sep) + os.sep, "")
    return text
