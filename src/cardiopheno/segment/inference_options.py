"""The settings of a :class:`~cardiopheno.segment.segmenter.Segmenter`, in three small records:
how the network runs (:class:`ComputeOptions`), which steps around it run and how
(:class:`StepOptions`) and the passes beside the plain prediction (:class:`PassOptions`)."""

from __future__ import annotations

from dataclasses import dataclass

from cardiopheno.segment.predict import ENSEMBLE_FLIPS


@dataclass(frozen=True)
class ComputeOptions:
    """How the network runs. ``slice_batch``: slices per network call (None or 0: 32 on the CPU,
    256 on a GPU); ``precision``: its arithmetic (auto, float32, bfloat16, float16;
    :func:`~cardiopheno.segment.network.resolve_precision`); ``threads``: torch CPU threads
    (None: leave torch's setting)."""

    slice_batch: int | None = None
    precision: str = "auto"
    threads: int | None = None


@dataclass(frozen=True)
class StepOptions:
    """The steps around the network. ``heart_crop``: segment on a window around the heart found
    on the first frame (a whole-field model: around the first frame's labels);
    ``smooth_inverse``: map probabilities back onto a resampled input bilinearly (else labels,
    nearest neighbour); ``largest_component`` and ``fill_holes``: the post-processing;
    ``convention``: the short axis's endocardial convention (segment.convention; other views
    have none); ``ed_frame``: how the phenotypes choose ED (:mod:`cardiopheno.definitions`),
    the frame at which the TTA Dice and the uncertainties are read with ES."""

    heart_crop: bool = True
    smooth_inverse: bool = True
    largest_component: bool = True
    fill_holes: bool = True
    convention: str = "acdc"
    ed_frame: str = "max_volume"


@dataclass(frozen=True)
class PassOptions:
    """The passes beside the plain prediction. ``flip_ensemble``: flipped copies averaged with
    it (0 to ``len(ENSEMBLE_FLIPS)``); ``tta``: the test-time-augmentation Dice at ED and ES
    (from the ensemble's passes when there are some, else from extra ones). A view whose labels
    are tied to the orientation (``ViewSpec.symmetric`` false) runs neither."""

    tta: bool = True
    flip_ensemble: int = 1

    def __post_init__(self) -> None:
        if not 0 <= int(self.flip_ensemble) <= len(ENSEMBLE_FLIPS):
            raise ValueError(
                f"flip_ensemble must be 0..{len(ENSEMBLE_FLIPS)}, got {self.flip_ensemble}"
            )
