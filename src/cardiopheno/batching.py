"""Stable batches of subjects: a subject's batch depends on its eid alone.

A hash of the eid picks one of ``n_batches`` buckets, so adding subjects to a cohort changes only
the batches they land in, and planning the DAG never needs to read per-subject data.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable


def batch_of(eid: str, n_batches: int) -> int:
    """The batch (0-based) that ``eid`` belongs to; crc32 is stable across runs and platforms."""
    return zlib.crc32(str(eid).encode()) % n_batches


def n_batches_for(n_subjects: int, batch_size: int) -> int:
    """Enough batches for ``n_subjects`` at about ``batch_size`` each (at least one)."""
    return max(1, math.ceil(n_subjects / batch_size))


def batch_name(index: int) -> str:
    return f"b{index:04d}"


def eids_in_batch(eids: Iterable[str], index: int, n_batches: int) -> list[str]:
    return [e for e in eids if batch_of(e, n_batches) == index]
