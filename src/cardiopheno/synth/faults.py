"""Fault injection: the ways real cohort files go wrong, each recorded in truth/faults.parquet.

Assignment rule (:func:`assign_faults`): ``ceil(fault_fraction * n)`` subjects are faulty (none
when the fraction is 0); when ``n >= 200`` and the fraction is positive, at least one subject per
fault type (11) is faulty. The faulty subjects are a seeded random sample; their fault types cycle
through a seeded permutation of :data:`FAULT_TYPES`, so every type appears once before any repeats.

Truth labels (truth/labels/<eid>.nii.gz) always describe the clean acquisition; the column
``labels_match_image`` says whether they lie on the written image's grid with the same content
geometry (true for intensity-only faults, false where the geometry or the file is broken).
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FAULT_TYPES = (
    "corrupt_gzip",  # bytes flipped in the middle of the compressed stream
    "truncated_gzip",  # file cut short
    "unreadable_header",  # NIfTI header overwritten with garbage
    "nan_voxels",  # a block of NaN voxels (float32 image)
    "blank_image",  # all zeros
    "wrong_dimensionality",  # 3D (one frame) or 5D
    "missing_frames",  # only 3 frames
    "missing_basal_slices",  # the top (basal) slices removed
    "interslice_motion",  # breath-hold misregistration: some slices shifted in-plane
    "extreme_noise",  # Rician noise at SNR about 1
    "swapped_axes",  # slices and frames transposed
)
FILE_FAULTS = ("corrupt_gzip", "truncated_gzip", "unreadable_header")


@dataclass
class FaultResult:
    data: np.ndarray
    affine: np.ndarray
    zooms: tuple[float, ...]
    detail: str
    labels_match_image: bool


def assign_faults(n: int, seed: int, fault_fraction: float) -> dict[int, str]:
    """Subject index -> fault type, by the documented rule."""
    if not 0.0 <= fault_fraction <= 1.0:
        raise ValueError(f"fault_fraction must be in [0, 1], got {fault_fraction}")
    if fault_fraction == 0.0 or n == 0:
        return {}
    n_faulty = math.ceil(fault_fraction * n)
    if n >= 200:
        n_faulty = max(n_faulty, len(FAULT_TYPES))
    n_faulty = min(n_faulty, n)
    rng = np.random.default_rng([seed, 0xFA17])
    idx = np.sort(rng.choice(n, size=n_faulty, replace=False))
    order = rng.permutation(len(FAULT_TYPES))
    return {int(i): FAULT_TYPES[order[j % len(FAULT_TYPES)]] for j, i in enumerate(idx)}


def apply_array_fault(
    fault: str,
    data: np.ndarray,
    affine: np.ndarray,
    zooms: tuple[float, ...],
    rng: np.random.Generator,
    intensity_scale: float,
    ed_frame: int,
) -> FaultResult:
    """The faulty image array for ``fault`` (file-level faults pass the array through)."""
    affine = affine.copy()
    if fault in FILE_FAULTS:
        return FaultResult(data, affine, zooms, "", False)
    if fault == "nan_voxels":
        out = data.astype(np.float32)
        k = int(rng.integers(0, data.shape[2]))
        i0, j0 = (int(rng.integers(0, s - 24)) for s in data.shape[:2])
        out[i0 : i0 + 24, j0 : j0 + 24, k, :] = np.nan
        n_nan = 24 * 24 * data.shape[3]
        return FaultResult(out, affine, zooms, f"{n_nan} NaN voxels in slice {k}", True)
    if fault == "blank_image":
        return FaultResult(np.zeros_like(data), affine, zooms, "all voxels zero", False)
    if fault == "wrong_dimensionality":
        if rng.random() < 0.5:
            return FaultResult(data[..., ed_frame], affine, zooms[:3], "3D: one frame only", False)
        return FaultResult(data[..., None], affine, (*zooms, 1.0), "5D: trailing axis", False)
    if fault == "missing_frames":
        return FaultResult(data[..., :3], affine, zooms, "only the first 3 frames", False)
    if fault == "missing_basal_slices":
        m = int(rng.integers(2, 4))
        affine[:3, 3] += m * affine[:3, 2]  # keep the geometry of the remaining slices
        return FaultResult(data[:, :, m:], affine, zooms, f"top {m} (basal) slices removed", False)
    if fault == "interslice_motion":
        out = data.copy()
        n_z = data.shape[2]
        ks = np.sort(rng.choice(n_z, size=min(n_z, int(rng.integers(2, 5))), replace=False))
        parts = []
        for k in ks:
            shift_mm = rng.uniform(6.0, 12.0) * np.array(
                [np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)]
            )
            shift_px = np.rint(shift_mm / zooms[0]).astype(int)
            out[:, :, k] = np.roll(data[:, :, k], tuple(shift_px), axis=(0, 1))
            parts.append(f"slice {k} by ({shift_px[0]}, {shift_px[1]}) px")
        return FaultResult(out, affine, zooms, "shifted " + "; ".join(parts), False)
    if fault == "extreme_noise":
        sigma = float(rng.uniform(0.8, 1.2)) * intensity_scale
        x = data.astype(np.float32)
        noisy = np.hypot(
            x + sigma * rng.standard_normal(x.shape, dtype=np.float32),
            sigma * rng.standard_normal(x.shape, dtype=np.float32),
        )
        out = np.clip(np.rint(noisy), 0, 32767).astype(np.int16)
        return FaultResult(
            out, affine, zooms, f"Rician noise sigma {sigma:.0f} (SNR about 1)", True
        )
    if fault == "swapped_axes":
        swapped = (zooms[0], zooms[1], zooms[3], zooms[2])
        return FaultResult(
            np.ascontiguousarray(np.swapaxes(data, 2, 3)), affine, swapped,
            "slice and frame axes transposed (X x Y x frames x slices)", False,
        )  # fmt: skip
    raise ValueError(f"unknown fault type {fault!r}")


def apply_file_fault(fault: str, path: Path, rng: np.random.Generator) -> str:
    """Damage a written .nii.gz in place; returns the detail recorded in truth/faults.parquet."""
    raw = path.read_bytes()
    if fault == "corrupt_gzip":
        start = len(raw) // 2
        n = min(512, len(raw) - start - 8)
        flipped = bytes(b ^ 0xA5 for b in raw[start : start + n])
        path.write_bytes(raw[:start] + flipped + raw[start + n :])
        return f"{n} bytes flipped at offset {start} of {len(raw)}"
    if fault == "truncated_gzip":
        keep = int(len(raw) * rng.uniform(0.3, 0.7))
        path.write_bytes(raw[:keep])
        return f"truncated to {keep} of {len(raw)} bytes"
    if fault == "unreadable_header":
        payload = bytearray(gzip.decompress(raw))
        payload[:348] = rng.integers(0, 256, 348, dtype=np.uint8).tobytes()
        path.write_bytes(gzip.compress(bytes(payload), compresslevel=1, mtime=0))
        return "348-byte NIfTI header replaced by random bytes"
    raise ValueError(f"{fault!r} is not a file-level fault")
