"""Segment cines of one view (:mod:`cardiopheno.views`: the short-axis stack, the long-axis 2- and
4-chamber cines, the aorta): one scan (:meth:`Segmenter.segment_file`) or a batch of subjects from
a manifest (:func:`segment_batch`, a data loader reading the next scans while the network runs).
Each view has its own network and label map; everything else is shared.

This module is the front door: it names the pieces, which live in small modules, one per step
(each testable alone), and re-exports their public names.

- :mod:`~cardiopheno.segment.segmenter`: :class:`Segmenter` (a loaded model and its settings) runs
  the steps on one cine; :class:`Prepared`, :class:`Segmentation`;
- :mod:`~cardiopheno.segment.inference_options`: the segmenter's settings (:class:`ComputeOptions`,
  :class:`StepOptions`, :class:`PassOptions`);
- :mod:`~cardiopheno.segment.predict`: the network on slice stacks, with the flip ensemble;
- :mod:`~cardiopheno.segment.ensemble`: the passes' TTA Dice and voxel counts;
- :mod:`~cardiopheno.segment.invert`: predictions back onto the input grid;
- :mod:`~cardiopheno.segment.cleanup`: post-processing (components, holes, convention);
- :mod:`~cardiopheno.segment.areas`: sub-pixel areas;
- :mod:`~cardiopheno.segment.batch`: the batch driver (:func:`run_batch`, :func:`segment_batch`);
- :mod:`~cardiopheno.segment.status`: the status table's columns, defined once.

Per cine: every slice of every frame is preprocessed in one call (see
:mod:`cardiopheno.segment.transforms`), the first frame is segmented on the ``roi`` grid to find
the heart, then all frames are segmented in slice batches on a ``crop`` window around it (for a
model of the whole field, ``crop == roi``: on the first frame's labels plus ``FIELD_MARGIN``
pixels, aligned to the network's stride so that the labels are those of the whole field), each
slice also flipped (``flip_ensemble`` copies) and the class probabilities averaged; labels are
mapped back onto the input grid (MONAI inverse: bilinear probabilities when resampled, else
nearest neighbour) and post-processed.
Test-time augmentation (flips) at the ED and ES frames measures how stable the prediction is:
``tta_dice_*`` is the mean Dice between the unflipped prediction and its flipped-input
counterparts (taken from the ensemble's passes when there is one, else from extra passes).
The same passes give each short-axis subject an uncertainty of its key phenotypes (``LVEDV_sd``
and so on, :mod:`cardiopheno.segment.uncertainty`): each pass's own labels at ED and ES, mapped
back and post-processed, give that pass's volumes, EF and mass; their spread is the column.
"""

from __future__ import annotations

from cardiopheno.segment.areas import AREA_MARGIN_PX, subpixel_areas
from cardiopheno.segment.batch import resolve_convention, run_batch, segment_batch
from cardiopheno.segment.ensemble import dice
from cardiopheno.segment.inference_options import ComputeOptions, PassOptions, StepOptions
from cardiopheno.segment.predict import ENSEMBLE_FLIPS, Prediction
from cardiopheno.segment.segmenter import (
    FIELD_MARGIN,
    Prepared,
    Segmentation,
    Segmenter,
    reference_frame,
    save_segmentation,
)
from cardiopheno.segment.status import STATUS_COLUMNS, TTA_KEYS, status_columns

__all__ = [
    "AREA_MARGIN_PX",
    "ENSEMBLE_FLIPS",
    "FIELD_MARGIN",
    "STATUS_COLUMNS",
    "TTA_KEYS",
    "ComputeOptions",
    "PassOptions",
    "Prediction",
    "Prepared",
    "Segmentation",
    "Segmenter",
    "StepOptions",
    "dice",
    "reference_frame",
    "resolve_convention",
    "run_batch",
    "save_segmentation",
    "segment_batch",
    "status_columns",
    "subpixel_areas",
]
