"""QC montage of one subject: image with label contours at ED and ES on basal, mid and apical
slices, titled with the subject and its QC reasons. Look at these for every failed subject."""

from __future__ import annotations

import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY  # noqa: E402
from cardiopheno.io.atomic import atomic_path  # noqa: E402

# drawn in this order: the LV cavity last, on top of the myocardium's inner contour
COLOURS = {LV_MYOCARDIUM: "#4daf4a", RV_CAVITY: "#377eb8", LV_CAVITY: "#e41a1c"}


def choose_slices(labels: np.ndarray | None, n_slices: int, ed: int, k: int = 3) -> list[int]:
    """k slices spread over the LV at ED (basal, mid, apical), else over the whole stack."""
    if labels is not None:
        lv = np.nonzero((labels[..., ed] == LV_CAVITY).any(axis=(0, 1)))[0]
        if lv.size:
            return sorted({int(lv[int(round(i))]) for i in np.linspace(0, lv.size - 1, k)})
    return sorted({int(round(i)) for i in np.linspace(0, n_slices - 1, k)})


def draw_montage(
    path: str | os.PathLike,
    eid: str,
    image: np.ndarray | None,
    labels: np.ndarray | None,
    reasons: str,
) -> None:
    """Write a PNG: rows ED and ES, columns three slices; contours LV red, myo green, RV blue."""
    title = f"{eid}: " + (reasons or "passed")
    if image is None:  # unreadable image: a card with the reason is still worth a look
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.01, 0.5, "\n".join(textwrap.wrap(title, 90)), va="center", fontsize=9)
        _save(fig, path)
        return
    if image.ndim == 3:
        image = image[..., np.newaxis]
    use_labels = labels is not None and labels.shape == image.shape
    if use_labels:
        lv = (labels == LV_CAVITY).sum(axis=(0, 1, 2))
        ed, es = int(np.argmax(lv)), int(np.argmin(lv))
    else:
        ed, es = 0, image.shape[3] // 3
    slices = choose_slices(labels if use_labels else None, image.shape[2], ed)
    phases = [("ED", ed), ("ES", es)] if es != ed else [("ED", ed)]
    fig, axes = plt.subplots(
        len(phases),
        len(slices),
        figsize=(2.6 * len(slices), 2.6 * len(phases) + 0.8),
        squeeze=False,
    )
    finite = image[np.isfinite(image)]
    vmin, vmax = np.percentile(finite, [1, 99.5]) if finite.size else (0.0, 1.0)
    for r, (phase, t) in enumerate(phases):
        for c, z in enumerate(slices):
            ax = axes[r, c]
            ax.imshow(np.nan_to_num(image[:, :, z, t]).T, cmap="gray", vmin=vmin, vmax=vmax)
            if use_labels:
                sl = labels[:, :, z, t].T
                for lab, colour in COLOURS.items():
                    if (sl == lab).any():
                        ax.contour(sl == lab, levels=[0.5], colors=colour, linewidths=0.8)
            ax.set_title(f"{phase} (frame {t}), slice {z}", fontsize=8)
            ax.axis("off")
    fig.suptitle("\n".join(textwrap.wrap(title, 110)), fontsize=8, ha="left", x=0.01)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
