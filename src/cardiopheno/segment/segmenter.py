"""One cine through the segmentation network: :class:`Segmenter` loads a view's model and runs
the inference steps (:mod:`~cardiopheno.segment.predict`, :mod:`~cardiopheno.segment.ensemble`,
:mod:`~cardiopheno.segment.invert`, :mod:`~cardiopheno.segment.cleanup`,
:mod:`~cardiopheno.segment.areas`) on one array or NIfTI file; :mod:`cardiopheno.segment.batch`
runs it over a batch of subjects. The pipeline is described in :mod:`cardiopheno.segment.infer`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cardiopheno import definitions
from cardiopheno.io.areas import remove_areas, write_areas
from cardiopheno.io.nifti import load_cine, save_labels_like
from cardiopheno.io.tables import file_sha256
from cardiopheno.segment.areas import frame_areas
from cardiopheno.segment.cleanup import PostProcess
from cardiopheno.segment.convention import check_convention
from cardiopheno.segment.ensemble import pass_counts, tta_from_members, tta_members
from cardiopheno.segment.inference_options import ComputeOptions, PassOptions, StepOptions
from cardiopheno.segment.invert import labels_to_input, prediction_to_input
from cardiopheno.segment.network import (
    fold_batch_norm,
    load_checkpoint,
    resolve_device,
    resolve_precision,
)
from cardiopheno.segment.orientation import InPlaneTurn, canonical_turn
from cardiopheno.segment.predict import ENSEMBLE_FLIPS, Prediction, frame_index, predict_stack
from cardiopheno.segment.transforms import SlicePipeline, heart_center, label_window
from cardiopheno.segment.uncertainty import phenotype_spread
from cardiopheno.views import ViewSpec, view_spec

# Pixels kept around the first frame's labels when a whole-field model (the single-slice views)
# segments the cine on a window: 48 left every label of the held-out la_2ch, la_4ch and ao
# cines as on the whole field, 32 changed a few dozen pixels per cine (BENCHMARKS.md)
FIELD_MARGIN = 48


@dataclass
class Prepared:
    """A cine preprocessed for the network (made in a data-loader worker)."""

    eid: str
    shape: tuple[int, int, int, int]  # X, Y, Z, T of the input
    stack: object  # MetaTensor (Z*T) x roi x roi, frame-major
    spacing: tuple[float, float] = (0.0, 0.0)  # input in-plane spacing (mm)
    voxel_ml: float = float("nan")  # voxel volume with the slice spacing (NaN when not given)
    error: str = ""
    source: str = ""
    seconds: float = 0.0
    frame_interval_ms: float | None = None
    frame_interval_source: str = "none"
    # MetaTensor Z x roi x roi: the slices at the cine's first frame when they are not in
    # ``stack`` (a lone frame given with its cine's first frame); None: the stack's first frame
    reference: object = None
    # the in-plane turn that put a single-slice view in its canonical orientation (undone on
    # the labels); None: the input's own orientation
    turn: InPlaneTurn | None = None


@dataclass
class Segmentation:
    labels: np.ndarray  # X x Y x Z x T uint8
    tta: dict[str, float] = field(default_factory=dict)
    frames: tuple[int, int] = (0, 0)  # ED and ES frames of ``labels`` (the phenotypes' rule)
    # passes x 2 (ED, ES) x labels: voxel counts of each pass's own labels (ensemble member or
    # TTA pass, plain prediction first) on the input grid after post-processing; None without
    # a second pass
    pass_counts: np.ndarray | None = None
    uncertainty: dict[str, float] = field(default_factory=dict)  # <IDP>_sd (short axis)
    # frames x labels: each structure's sub-pixel area (mm2, summed over slices) from a model
    # trained on partial-volume targets (see Segmenter.subpixel_areas); None otherwise
    areas: np.ndarray | None = None


class Segmenter:
    """A loaded network plus the pipeline that goes with it; its settings are three small
    records (:mod:`cardiopheno.segment.inference_options`)."""

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        device: str | None = "auto",
        view: str | ViewSpec = "sa",
        *,
        compute: ComputeOptions | None = None,
        steps: StepOptions | None = None,
        passes: PassOptions | None = None,
    ):
        """The model of ``view`` (``checkpoint``, default its shipped one) on ``device`` (cpu,
        cuda or auto), run as ``compute``, ``steps`` and ``passes`` say (None: their defaults)."""
        compute, steps = compute or ComputeOptions(), steps or StepOptions()
        if compute.threads:
            torch.set_num_threads(int(compute.threads))
        self.device = resolve_device(device)
        # autocast dtype of the network (None: float32); see network.resolve_precision
        self.amp_dtype = resolve_precision(compute.precision, self.device)
        self.precision = str(self.amp_dtype or torch.float32).removeprefix("torch.")
        self.view = view if isinstance(view, ViewSpec) else view_spec(view)
        # endocardial convention of the short-axis labels (segment.convention); other views
        # have none
        self.convention = (
            check_convention(steps.convention) if self.view.endocardial_convention else "none"
        )
        self._load_model(checkpoint)
        # None/0: 32 slices per call on the CPU (fastest end to end on the quiet 2-core VM,
        # BENCHMARKS.md), 256 on a GPU
        self.slice_batch = int(compute.slice_batch or (32 if self.device.type == "cpu" else 256))
        self.heart_crop = steps.heart_crop and self.pre_cfg.crop < self.pre_cfg.roi
        # a whole-field model (crop == roi) crops to its labels instead, on the stride grid
        self.field_crop = steps.heart_crop and not self.heart_crop
        self.stride = int(np.prod(self.net_cfg.strides))
        self.largest_component = steps.largest_component
        self.fill_holes = steps.fill_holes
        self.smooth_inverse = steps.smooth_inverse
        # ED as the phenotypes choose it (config phenotypes.ed_frame): the frame of largest LV
        # cavity, or the first; ES is the smallest
        self.ed_frame = steps.ed_frame
        self._set_passes(passes or PassOptions())

    def _load_model(self, checkpoint: str | os.PathLike | None) -> None:
        """The view's network from ``checkpoint`` (or its shipped one), checked against the
        view's classes and made fast for inference."""
        self.checkpoint = Path(checkpoint) if checkpoint else self.view.default_checkpoint
        self.model, self.net_cfg, self.pre_cfg, blob = load_checkpoint(self.checkpoint, self.device)
        # a model trained on partial-volume targets: its probabilities estimate each pixel's
        # share of a structure, so their sum is a sub-pixel area (Segmentation.areas)
        self.subpixel_areas = bool(blob.get("soft_targets", False))
        if self.net_cfg.out_channels != self.view.n_classes:
            raise ValueError(
                f"{self.checkpoint}: the network has {self.net_cfg.out_channels} output classes, "
                f"the {self.view.name} view needs {self.view.n_classes} (background + "
                f"{', '.join(self.view.labels.values())})"
            )
        # batch norm folded into the convolutions and channels-last layout: the network alone
        # went from 422 to 808 slices/s on the 2-core CPU (BENCHMARKS.md); channels-last is also
        # the layout tensor cores prefer on a GPU
        self.memory_format = torch.channels_last
        self.model = fold_batch_norm(self.model).to(memory_format=self.memory_format)
        self.sha256 = file_sha256(self.checkpoint)
        self.pipe = SlicePipeline(self.pre_cfg)

    def _set_passes(self, passes: PassOptions) -> None:
        """The flipped copies of the ensemble and the TTA passes the view's labels allow."""
        self.tta = passes.tta
        self.flips = ENSEMBLE_FLIPS[: int(passes.flip_ensemble)]
        if not self.view.symmetric:  # labels tied to the orientation: no flipped copies
            self.flips, self.tta = (), False
        # a canonically turned view is trained on mirror images along its first axis only
        self.tta_axes = (1,) if self.view.canonical else (1, 2)
        if self.view.canonical:
            self.flips = ((1,),)[: len(self.flips)]

    # ------------------------------------------------------------------ network on slice stacks
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=self.memory_format)
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        ):
            return self.model(x).float()

    def predict(
        self,
        stack: torch.Tensor,
        probabilities: bool = False,
        flips: Sequence = (),
        slices_per_frame: int | None = None,
        reference=None,
    ) -> Prediction:
        """The network on ``N x H x W`` preprocessed slices (:func:`predict_stack`)."""
        return predict_stack(
            self._forward, self.net_cfg, stack, self.slice_batch, self.device,
            probabilities, flips, slices_per_frame, reference,
        )  # fmt: skip

    def predict_labels(
        self, stack: torch.Tensor, slices_per_frame: int | None = None, reference=None
    ) -> torch.Tensor:
        """Labels of the network alone (no ensemble) on ``N x H x W`` slices."""
        return self.predict(stack, slices_per_frame=slices_per_frame, reference=reference).labels

    # ----------------------------------------------------------------------------- one cine
    def prepare(
        self,
        data: np.ndarray,
        spacing: Sequence[float],
        eid: str = "",
        reference: np.ndarray | None = None,
        affine: np.ndarray | None = None,
    ) -> Prepared:
        """``X x Y x Z [x T]`` ``data`` onto the network grid; ``reference`` (``X x Y x Z``) is the
        cine's first frame when ``data`` lacks it (one frame of a cine), normalised with it. A
        canonical view is first turned by its ``affine`` (segment.orientation)."""
        if data.ndim == 3:
            data = data[..., None]
        turn = canonical_turn(affine) if self.view.canonical else None
        if turn is not None and not turn.identity:
            data, spacing = turn.apply(data), turn.spacing(spacing)
            if reference is not None:
                reference = turn.apply(reference)
        x, y, z, t = data.shape
        slices = np.ascontiguousarray(np.asarray(data, dtype=np.float32).transpose(3, 2, 0, 1))
        slices = slices.reshape(t * z, x, y)
        spacing_xy = (float(spacing[0]), float(spacing[1]))
        ref, intensity = None, None
        if reference is not None:
            ref = np.ascontiguousarray(np.asarray(reference, dtype=np.float32).transpose(2, 0, 1))
            if ref.shape != (z, x, y):
                raise ValueError(f"reference frame {reference.shape} is not the frame's {x, y, z}")
            intensity = np.concatenate([slices, ref])
            ref = self.pipe.preprocess(ref, spacing_xy, intensity_from=intensity)
        stack = self.pipe.preprocess(slices, spacing_xy, intensity_from=intensity)
        voxel_ml = float(np.prod(spacing[:3])) / 1000.0 if len(spacing) >= 3 else float("nan")
        return Prepared(
            eid,
            (x, y, z, t),
            stack,
            spacing=spacing_xy,
            voxel_ml=voxel_ml,
            reference=ref,
            turn=turn,
        )

    def _clean(self, labels: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
        """Post-process an ``X x Y x Z x T`` label map in place with this segmenter's settings
        (:class:`~cardiopheno.segment.cleanup.PostProcess`; ``spacing``: in-plane, mm)."""
        step = PostProcess(self.view, self.largest_component, self.fill_holes, self.convention)
        return step(labels, spacing)

    def _crop(self, stack, first_frame, ref):
        """The stack cropped around the heart (found on the first frame) or, for a whole-field
        model, to the first frame's labels; the crop (None: the whole ``roi``) and ``ref``."""
        crop_tf = None
        if self.heart_crop:
            first = self.predict_labels(first_frame, reference=ref)  # frame 0 on the roi grid
            center = heart_center(first.numpy(), self.pre_cfg.roi)
            stack, crop_tf = self.pipe.crop_to_heart(stack, center)
        elif self.field_crop:
            first = self.predict_labels(first_frame, reference=ref)  # frame 0, whole field
            window = label_window(first.numpy(), self.pre_cfg.roi, FIELD_MARGIN, self.stride)
            if window is not None:
                stack, crop_tf = self.pipe.crop_to_window(stack, *window)
        if ref is not None and crop_tf is not None:
            ref = crop_tf(ref)
        return stack, crop_tf, ref

    def segment_prepared(self, prep: Prepared) -> Segmentation:
        """The steps on one prepared cine: crop, predict (with the flip ensemble), invert onto
        the input grid, post-process, the ED/ES frames, sub-pixel areas, then the passes' TTA
        Dice and phenotype uncertainties."""
        x, y, z, t = prep.shape
        # the heart is found on the cine's first frame: the reference when it is given apart
        first_frame = prep.stack[:z] if prep.reference is None else prep.reference
        stack, crop_tf, ref = self._crop(prep.stack, first_frame, prep.reference)
        smooth = self.smooth_inverse and self.pipe.resamples(prep.spacing)
        pred = self.predict(
            stack, probabilities=smooth or self.subpixel_areas, flips=self.flips,
            slices_per_frame=z, reference=ref,
        )  # fmt: skip
        labels, probs = prediction_to_input(
            self.pipe, pred, stack, crop_tf, prep.shape, self.view.classes, smooth,
            self.subpixel_areas,
        )  # fmt: skip
        self._clean(labels, prep.spacing)
        ed, es = phase_frames(labels, self.view.classes[0], self.ed_frame)
        result = Segmentation(labels, frames=(ed, es))
        if probs is not None:
            result.areas = frame_areas(probs, labels, self.view.classes, prep.spacing)
        self._passes(result, pred, stack, crop_tf, ref, prep)
        if prep.turn is not None and not prep.turn.identity:
            result.labels = prep.turn.invert(result.labels)
        return result

    def _passes(self, result: Segmentation, pred: Prediction, stack, crop_tf, ref, prep) -> None:
        """TTA Dice and the phenotype uncertainties from each pass's labels at ED and ES: the
        ensemble's members, else the TTA passes."""
        z = prep.shape[2]
        frames = sorted(set(result.frames))
        members = []
        if pred.members:
            idx = frame_index(frames, z)
            members = [m[idx] for m in pred.members]
        elif self.tta:
            members = tta_members(
                self.predict_labels, stack, pred.labels, frames, z, self.tta_axes, ref
            )
        if self.tta and members:
            result.tta = tta_from_members(members, list(range(len(frames))), z, self.view)
        if self.view.uncertainty and members:

            def to_input(member: torch.Tensor) -> np.ndarray:
                labels = labels_to_input(self.pipe, member, stack, crop_tf, prep.shape)
                return self._clean(labels, prep.spacing)

            result.pass_counts = pass_counts(
                members, frames, result.frames, to_input, self.view.n_classes
            )
            result.uncertainty = phenotype_spread(result.pass_counts, prep.voxel_ml)

    def lone_frame_warning(self, image: str | os.PathLike, reference=None) -> str:
        """A one-line warning when ``image`` is one 3D frame, segmented with no ``reference`` by a
        network that reads each slice's twin in the cine's first frame ("" otherwise)."""
        if not self.net_cfg.reference or reference is not None or len(nifti_shape(image)) == 4:
            return ""
        return (
            f"{image} is one 3D frame and no --reference was given: the {self.view.name} model "
            "reads the cine's first frame (end-diastole) beside each slice and takes this frame "
            "as its own; if it is not end-diastole (an ES file), give the ED frame with "
            "--reference ED.nii.gz"
        )

    def segment_array(
        self,
        data: np.ndarray,
        spacing: Sequence[float],
        reference: np.ndarray | None = None,
        affine: np.ndarray | None = None,
    ) -> Segmentation:
        """Segment an ``X x Y x Z [x T]`` array with in-plane ``spacing`` (mm); ``reference``: the
        cine's first frame (``X x Y x Z``) when ``data`` is a later frame alone. A network
        without a reference channel ignores it."""
        squeeze = data.ndim == 3
        if not self.net_cfg.reference:
            reference = None
        prep = self.prepare(data, spacing, reference=reference, affine=affine)
        seg = self.segment_prepared(prep)
        if squeeze:
            seg.labels = seg.labels[..., 0]
        return seg

    def segment_file(
        self,
        image: str | os.PathLike,
        output: str | os.PathLike,
        reference: str | os.PathLike | None = None,
    ) -> Segmentation:
        """Segment a 3D or 4D NIfTI; write the label map with the input's shape and affine (and
        the sub-pixel areas, see :func:`save_segmentation`). ``reference``: a NIfTI of the
        cine's first frame (end-diastole) on the image's grid, for an image that is a later frame
        given alone (ACDC's and M&Ms' ES file); a network without a reference channel ignores it."""
        cine = load_cine(image)
        ndim = len(nifti_shape(image))
        data = cine.data if ndim == 4 else cine.data[..., 0]
        ref = (
            None if reference is None else reference_frame(reference, image, cine.data, cine.affine)
        )
        seg = self.segment_array(data, cine.spacing, reference=ref, affine=cine.affine)
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        save_segmentation(output, seg, image, self.view)
        return seg


def reference_frame(
    path: str | os.PathLike,
    image: str | os.PathLike,
    data: np.ndarray,
    affine: np.ndarray,
    atol_mm: float = 1e-3,
) -> np.ndarray:
    """The phase-reference frame (``X x Y x Z``) read from ``path``: a 3D frame, or the first
    frame of a cine, on the grid of ``image`` (its ``data`` and ``affine``: same shape, affines
    equal within ``atol_mm``)."""
    ref = load_cine(path)
    if ref.data.shape[:3] != data.shape[:3]:
        raise ValueError(
            f"reference {path} has shape {ref.data.shape[:3]}, expected that of {image}, "
            f"{data.shape[:3]}"
        )
    diff = float(np.max(np.abs(np.asarray(ref.affine) - np.asarray(affine))))
    if diff > atol_mm:
        raise ValueError(
            f"reference {path} is on another grid than {image}: its affine differs by up to "
            f"{diff:.4g} mm"
        )
    return ref.data[..., 0]


def save_segmentation(
    output: str | os.PathLike, seg: Segmentation, image: str | os.PathLike, view: ViewSpec
) -> None:
    """The label map with ``image``'s grid and affine, and beside it the sub-pixel areas when the
    model measured them (:mod:`cardiopheno.io.areas`); an older area file is removed otherwise."""
    save_labels_like(output, seg.labels, image)
    if seg.areas is not None:
        write_areas(output, seg.areas, view.classes)
    else:
        remove_areas(output)


def nifti_shape(path) -> tuple[int, ...]:
    import nibabel as nib

    return tuple(nib.load(path).shape)


def phase_frames(labels: np.ndarray, label: int = 1, ed_frame: str = "max_volume"):
    """ED and ES frames of an ``X x Y x Z x T`` label map as the phenotypes choose them
    (:mod:`cardiopheno.definitions`): the frames where ``label`` (the LV cavity of the short
    axis) is largest (or the first frame, ``ed_frame="first"``) and smallest among the frames
    that have it."""
    volume = np.count_nonzero(labels == label, axis=(0, 1, 2))
    return definitions.ed_frame(volume, ed_frame), definitions.es_frame(volume)
