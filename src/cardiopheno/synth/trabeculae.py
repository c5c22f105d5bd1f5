"""An optional trabeculated inner layer for the synthetic short-axis cine, with labels in both
endocardial conventions (:mod:`cardiopheno.segment.convention`).

The phantom's own labels have a smooth endocardium: its papillary muscles are drawn dark inside
the cavity and labelled cavity, which is the ``ukbb`` convention. :func:`add_trabeculae` paints,
inside that endocardium, a band of trabeculae: dark fingers of myocardium attached to the compact
wall, with bright blood in the recesses between them. The band is ``ed_mm`` deep at end-diastole
and thickens to ``es_mm`` at end-systole as the trabeculae crowd together, in proportion to how
far each frame's cavity has contracted. The ``ukbb`` truth is the phantom's labels unchanged
(the band belongs to the cavity); the ``acdc`` labels follow the image (the fingers are
myocardium, the recesses cavity), as a contour drawn close to the blood would.

Off by default: nothing in the cohort generator calls it, so the demo and every cohort render as
before. ``benchmarks/convention.py`` and ``tests/test_synth_trabeculae.py`` use it to check the
``ukbb`` transform against a truth it did not make.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM


@dataclass(frozen=True)
class Trabeculae:
    """Shape of the trabeculated layer."""

    ed_mm: float = 2.0  # depth of the band at end-diastole
    es_mm: float = 4.0  # ... and at end-systole
    fingers: int = 16  # trabeculae around the circumference
    share: float = 0.5  # fraction of the band's circumference that is muscle


def add_trabeculae(
    image: np.ndarray,
    labels: np.ndarray,
    spacing: tuple[float, float],
    rng: np.random.Generator,
    layer: Trabeculae = Trabeculae(),
) -> tuple[np.ndarray, np.ndarray]:
    """The cine ``image`` with a trabeculated layer painted in, and its labels in the ``acdc``
    convention. ``labels`` (``X x Y x Z x T``, the phantom's, smooth endocardium) are the
    ``ukbb`` truth and are not modified; ``spacing`` is the in-plane pixel size (mm). Each
    slice's fingers start at a random angle (``rng``) and keep it through the cycle."""
    out_image = np.array(image, copy=True)
    acdc = np.array(labels, copy=True)
    cavity_all = labels == LV_CAVITY
    volume = cavity_all.sum(axis=(0, 1, 2)).astype(float)
    if volume.max() <= 0:
        return out_image, acdc
    span = max(volume.max() - volume[volume > 0].min(), 1.0)
    phases = rng.uniform(0, 2 * np.pi, labels.shape[2])
    threshold = np.cos(np.pi * layer.share)  # cos(n theta + phase) > this: a finger
    for t in range(labels.shape[3]):
        contraction = (volume.max() - volume[t]) / span  # 0 at ED, 1 at ES
        depth = layer.ed_mm + (layer.es_mm - layer.ed_mm) * contraction
        for k in range(labels.shape[2]):
            cavity = cavity_all[:, :, k, t]
            if not cavity.any():
                continue
            inner = ndimage.distance_transform_edt(cavity, sampling=spacing)
            band = cavity & (inner <= depth)
            cx, cy = ndimage.center_of_mass(cavity)
            x, y = np.nonzero(band)
            angle = np.arctan2((y - cy) * spacing[1], (x - cx) * spacing[0])
            muscle = np.cos(layer.fingers * angle + phases[k]) > threshold
            fx, fy = x[muscle], y[muscle]
            acdc[fx, fy, k, t] = LV_MYOCARDIUM
            wall = labels[:, :, k, t] == LV_MYOCARDIUM
            if wall.any():
                level = np.median(image[:, :, k, t][wall])
                out_image[fx, fy, k, t] = np.asarray(level).astype(out_image.dtype)
    return out_image, acdc
