"""A picture of the cohort: mid-ventricular slice at ED and ES for a few subjects."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cardiopheno.io.atomic import atomic_path  # noqa: E402
from cardiopheno.io.nifti import ImageReadError, load_cine  # noqa: E402
from cardiopheno.io.tables import read_any, read_table  # noqa: E402

log = logging.getLogger(__name__)


def write_montage(
    cohort_dir: str | os.PathLike, png_path: str | os.PathLike, n_subjects: int = 6
) -> None:
    """Mid-ventricular ED (top row) and ES (bottom row) slices of the first readable fault-free
    subjects, grey colormap, titled with eid and frame."""
    cohort_dir = Path(cohort_dir)
    manifest = read_any(cohort_dir / "manifest.csv")
    truth_path = cohort_dir / "truth" / "idps.parquet"
    truth = read_table(truth_path).set_index("eid") if truth_path.exists() else None
    faulty: set[str] = set()
    if (cohort_dir / "truth" / "faults.parquet").exists():
        faulty = set(read_table(cohort_dir / "truth" / "faults.parquet")["eid"])
    chosen = []
    for eid, rel in zip(manifest["eid"], manifest["sa"], strict=True):
        if eid in faulty:
            continue
        try:
            cine = load_cine(cohort_dir / rel)
        except ImageReadError as exc:
            log.warning("montage skips %s: %s", eid, exc)
            continue
        chosen.append((eid, cine))
        if len(chosen) == n_subjects:
            break
    if not chosen:
        raise ValueError(f"{cohort_dir}: no readable fault-free subject for the montage")
    fig, axes = plt.subplots(2, len(chosen), figsize=(2.6 * len(chosen), 5.6), squeeze=False)
    for col, (eid, cine) in enumerate(chosen):
        if truth is not None and eid in truth.index:
            ed, es = int(truth.at[eid, "ED_frame"]), int(truth.at[eid, "ES_frame"])
        else:  # no truth: take frame 0 and the frame of least mean intensity near the heart
            ed, es = 0, int(np.argmin(cine.data.mean(axis=(0, 1, 2))))
        z = cine.data.shape[2] // 2
        for row, (frame, name) in enumerate(((ed, "ED"), (es, "ES"))):
            img = cine.data[:, :, z, frame].T  # rows = second axis: anatomical display
            ax = axes[row, col]
            ax.imshow(img, cmap="gray", vmin=0, vmax=np.percentile(img, 99.5))
            ax.set_title(f"{eid} {name} (frame {frame}, slice {z})", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
