"""Inference step 4, post-process: the labels on the input grid cleaned the same way for the
final map and for every pass behind the uncertainties (largest components, holes filled, then the
short axis's endocardial convention, :mod:`cardiopheno.segment.convention`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cardiopheno.segment.convention import apply_convention
from cardiopheno.segment.transforms import postprocess
from cardiopheno.views import ViewSpec


@dataclass(frozen=True)
class PostProcess:
    """Post-processing of one view's ``X x Y x Z x T`` label maps."""

    view: ViewSpec
    largest_component: bool = True
    fill_holes: bool = True
    convention: str = "none"  # the endocardial convention; "none" for views without one

    def __call__(self, labels: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
        """Clean ``labels`` in place (``spacing``: in-plane, mm) and return them."""
        view = self.view
        postprocess(labels, self.largest_component, self.fill_holes, view.classes, view.fill_holes)
        if self.convention != "none":
            apply_convention(labels, self.convention, spacing)
        return labels
