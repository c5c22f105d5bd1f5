"""Segment cines of one view (:mod:`cardiopheno.views`: the short-axis stack, the long-axis 2- and
4-chamber cines, the aorta): one scan (:meth:`Segmenter.segment_file`) or a batch of subjects from
a manifest (:func:`segment_batch`, a data loader reading the next scans while the network runs).
Each view has its own network and label map; everything else is shared.

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

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage
from tqdm import tqdm

from cardiopheno import definitions
from cardiopheno.io.areas import remove_areas, write_areas
from cardiopheno.io.contract import InputError, spacing_problems, without_reprs
from cardiopheno.io.nifti import ImageReadError, load_cine, read_frame_interval, save_labels_like
from cardiopheno.io.paths import input_root, scrub_paths
from cardiopheno.io.provided import check_provided_segmentation
from cardiopheno.io.tables import ColumnSpec, file_sha256, read_table, write_table
from cardiopheno.segment.convention import apply_convention, check_convention
from cardiopheno.segment.network import (
    DEFAULT_CHECKPOINT,
    fold_batch_norm,
    load_checkpoint,
    resolve_device,
    resolve_precision,
)
from cardiopheno.segment.orientation import InPlaneTurn, canonical_turn
from cardiopheno.segment.transforms import (
    SlicePipeline,
    context_index,
    heart_center,
    label_window,
    postprocess,
)
from cardiopheno.segment.uncertainty import UNCERTAINTY_COLUMNS, phenotype_spread
from cardiopheno.views import VIEWS, ViewSpec, view_spec

log = logging.getLogger(__name__)
TTA_KEYS = tuple(VIEWS["sa"].keys.values())  # the short axis's: lv, myo, rv


def status_columns(view: ViewSpec) -> dict[str, ColumnSpec]:
    """Documented float columns of a view's segment table (the short axis adds the phenotype
    uncertainties of :mod:`cardiopheno.segment.uncertainty`)."""
    return {
        "seconds": ColumnSpec("s", "wall time spent on this subject (read, segment, write)"),
        "frame_interval_ms": ColumnSpec(
            "ms",
            "frame interval from the NIfTI header (pixdim[4]) that the phenotypes use; NaN when "
            "unknown. frame_interval_source says whether its unit was read from the header "
            "('header sec|msec|usec') or inferred ('inferred sec|msec', see io.nifti.frame_interval)",
        ),
        **{
            f"tta_dice_{view.keys[c]}": ColumnSpec(
                "",
                f"mean Dice of the {view.labels[c]} between the prediction and predictions on "
                "flipped input at the frames of largest and smallest "
                f"{view.labels[view.classes[0]]} (test-time augmentation); NaN when TTA is off "
                "or not run",
            )
            for c in view.classes
        },
        **(UNCERTAINTY_COLUMNS if view.name == "sa" else {}),
    }


STATUS_COLUMNS = status_columns(VIEWS["sa"])

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


# sub-pixel areas sum a structure's probability over its final label grown by this many pixels
# in-plane: partial-volume pixels lie within one pixel of the share >= 0.5 boundary
AREA_MARGIN_PX = 2


def subpixel_areas(
    probs: np.ndarray, labels: np.ndarray, classes: Sequence[int], pixel_area_mm2: float
) -> np.ndarray:
    """Per-frame area (mm2) of each class: its probability (``slices x frames x len(classes) x
    X x Y`` on the input grid, in ``classes``' order) summed over its label in ``labels``
    (``X x Y x slices x frames``) grown by :data:`AREA_MARGIN_PX` in-plane, so stray probability
    elsewhere is not counted."""
    grow = np.zeros((1, 1, 3, 3), dtype=bool)
    grow[0, 0] = ndimage.generate_binary_structure(2, 1)
    per_slice = labels.transpose(2, 3, 0, 1)  # slices x frames x X x Y, as probs
    out = np.zeros((labels.shape[3], len(classes)))
    for i, c in enumerate(classes):
        near = ndimage.binary_dilation(per_slice == c, grow, iterations=AREA_MARGIN_PX)
        share = np.where(near, probs[:, :, i], 0.0)
        out[:, i] = share.sum(axis=(0, 2, 3)) * pixel_area_mm2
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks; 1 when both are empty."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


# Flipped copies of the input averaged with the prediction (``flip_ensemble`` = how many, in this
# order): both in-plane axes (a 180-degree rotation), then each axis alone. Dims of N x H x W.
ENSEMBLE_FLIPS = ((1, 2), (1,), (2,))


@dataclass
class Prediction:
    """The network's output on a slice stack (``N x H x W``)."""

    labels: torch.Tensor  # N x H x W uint8: argmax of the (ensemble-mean) class probabilities
    probs: torch.Tensor | None = None  # N x 4 x H x W float32 mean softmax, when asked for
    members: list[torch.Tensor] = field(default_factory=list)  # argmax of each ensemble member


class Segmenter:
    """A loaded network plus the pipeline that goes with it."""

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        device: str | None = "auto",
        slice_batch: int | None = None,
        heart_crop: bool = True,
        tta: bool = True,
        largest_component: bool = True,
        fill_holes: bool = True,
        threads: int | None = None,
        smooth_inverse: bool = True,
        flip_ensemble: int = 1,
        precision: str = "auto",
        view: str = "sa",
        ed_frame: str = "max_volume",
        convention: str = "acdc",
    ):
        if threads:
            torch.set_num_threads(int(threads))
        if not 0 <= int(flip_ensemble) <= len(ENSEMBLE_FLIPS):
            raise ValueError(f"flip_ensemble must be 0..{len(ENSEMBLE_FLIPS)}, got {flip_ensemble}")
        self.device = resolve_device(device)
        # autocast dtype of the network (None: float32); see network.resolve_precision
        self.amp_dtype = resolve_precision(precision, self.device)
        self.precision = str(self.amp_dtype or torch.float32).removeprefix("torch.")
        self.view = view_spec(view)
        # endocardial convention of the short-axis labels (segment.convention); other views
        # have none
        self.convention = check_convention(convention) if view == "sa" else "none"
        default = DEFAULT_CHECKPOINT if view == "sa" else self.view.default_checkpoint
        self.checkpoint = Path(checkpoint) if checkpoint else default
        self.model, self.net_cfg, self.pre_cfg, blob = load_checkpoint(self.checkpoint, self.device)
        # a model trained on partial-volume targets: its probabilities estimate each pixel's
        # share of a structure, so their sum is a sub-pixel area (Segmentation.areas)
        self.subpixel_areas = bool(blob.get("soft_targets", False))
        if self.net_cfg.out_channels != self.view.n_classes:
            raise ValueError(
                f"{self.checkpoint}: the network has {self.net_cfg.out_channels} output classes, "
                f"the {view} view needs {self.view.n_classes} (background + "
                f"{', '.join(self.view.labels.values())})"
            )
        # batch norm folded into the convolutions and channels-last layout: the network alone
        # went from 422 to 808 slices/s on the 2-core CPU (BENCHMARKS.md); channels-last is also
        # the layout tensor cores prefer on a GPU
        self.memory_format = torch.channels_last
        self.model = fold_batch_norm(self.model).to(memory_format=self.memory_format)
        self.sha256 = file_sha256(self.checkpoint)
        self.pipe = SlicePipeline(self.pre_cfg)
        # None/0: 32 slices per call on the CPU (fastest end to end on the quiet 2-core VM,
        # BENCHMARKS.md), 256 on a GPU
        self.slice_batch = int(slice_batch or (32 if self.device.type == "cpu" else 256))
        self.heart_crop = heart_crop and self.pre_cfg.crop < self.pre_cfg.roi
        # a whole-field model (crop == roi) crops to its labels instead, on the stride grid
        self.field_crop = heart_crop and not self.heart_crop
        self.stride = int(np.prod(self.net_cfg.strides))
        self.tta = tta
        self.largest_component = largest_component
        self.fill_holes = fill_holes
        self.smooth_inverse = smooth_inverse
        self.flips = ENSEMBLE_FLIPS[: int(flip_ensemble)]
        # ED as the phenotypes choose it (config phenotypes.ed_frame): the frame of largest LV
        # cavity, or the first; ES is the smallest
        self.ed_frame = ed_frame
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

    @torch.inference_mode()
    def predict(
        self,
        stack: torch.Tensor,
        probabilities: bool = False,
        flips: Sequence = (),
        slices_per_frame: int | None = None,
        reference=None,
    ) -> Prediction:
        """The network on ``N x H x W`` preprocessed slices, ``slice_batch`` slices per call.

        ``N`` is frames x ``slices_per_frame`` slices, frame by frame (default: one frame); a
        2.5D network (``context``) sees each slice with its neighbours in the same frame, and a
        network with a ``reference`` channel each slice's twin in the cine's first frame
        (``reference``, ``slices_per_frame x H x W``; default: the stack's first frame).

        With ``flips`` (dims of ``N x H x W``), the input is also flipped along each, predicted
        and flipped back, and the class probabilities of all these members are averaged (a
        test-time-augmentation ensemble: it cancels prediction noise that is not tied to the
        image's orientation). ``members`` then holds each member's own labels (the unflipped
        prediction first) for the stability measure of :meth:`_tta_from_members`.
        """
        x_all = torch.as_tensor(stack).as_subclass(torch.Tensor)
        n = x_all.shape[0]
        z = slices_per_frame or max(n, 1)
        context = torch.from_numpy(context_index(np.arange(n) // z, self.net_cfg.context))
        if self.net_cfg.reference:  # each slice's twin in the first frame, a last channel
            ref = x_all[:z] if reference is None else torch.as_tensor(reference)
            ref = ref.as_subclass(torch.Tensor)
        labels, probs, members = [], [], [[] for _ in range(len(flips) + 1 if flips else 0)]
        for start in range(0, n, self.slice_batch):
            end = start + self.slice_batch
            x = x_all[context[start:end]]
            if self.net_cfg.reference:
                x = torch.cat([x, ref[torch.arange(start, min(end, n)) % z, None]], dim=1)
            x = x.to(self.device, non_blocking=True)
            out = self._forward(x)
            if flips or probabilities:
                out = torch.softmax(out, dim=1)
            if flips:
                members[0].append(_argmax(out).cpu())
                for i, dims in enumerate(flips, start=1):
                    d = tuple(a + 1 for a in dims)  # N x 1 x H x W
                    q = torch.flip(torch.softmax(self._forward(torch.flip(x, d)), dim=1), d)
                    members[i].append(_argmax(q).cpu())
                    out += q
                out /= len(flips) + 1
            labels.append(_argmax(out).cpu())
            if probabilities:
                probs.append(out.cpu())
        if not labels:
            return Prediction(torch.empty((0, *x_all.shape[1:]), dtype=torch.uint8))
        return Prediction(
            torch.cat(labels),
            torch.cat(probs) if probabilities else None,
            [torch.cat(m) for m in members],
        )

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

    def segment_prepared(self, prep: Prepared) -> Segmentation:
        x, y, z, t = prep.shape
        stack, ref = prep.stack, prep.reference
        crop_tf = None
        # the heart is found on the cine's first frame: the reference when it is given apart
        first_frame = stack[:z] if ref is None else ref
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
        smooth = self.smooth_inverse and self.pipe.resamples(prep.spacing)
        need_probs = smooth or self.subpixel_areas
        # (T*Z) x h x w
        pred = self.predict(
            stack, probabilities=need_probs, flips=self.flips, slices_per_frame=z, reference=ref
        )
        # the labelled classes' probabilities on the input grid, kept for sub-pixel areas
        probs = None
        if self.subpixel_areas:
            probs = np.empty((t * z, len(self.view.classes), x, y), np.float32)
        if need_probs:
            # class probabilities mapped back onto the input grid; when the grids differ,
            # their argmax gives smoother boundaries than nearest-neighbour labels
            argmax = torch.empty((t * z, x, y), dtype=torch.uint8) if smooth else None
            step = max(1, 256 // 4)
            for i in range(0, t * z, step):
                chunk = pred.probs[i : i + step]
                if not smooth:
                    chunk = chunk[:, list(self.view.classes)]
                inv = self.pipe.invert(chunk.reshape(-1, *chunk.shape[2:]), stack, crop_tf)
                inv = inv.reshape(chunk.shape[0], -1, x, y)
                if smooth:
                    argmax[i : i + step] = inv.max(1).indices
                if probs is not None:
                    probs[i : i + step] = (
                        inv[:, list(self.view.classes)] if smooth else inv
                    ).numpy()
        if smooth:
            labels = argmax
        else:  # the grids agree (or no smoothing): the network's own labels
            labels = self.pipe.invert(pred.labels.float(), stack, crop_tf, mode="nearest")
            labels = labels.round().to(torch.uint8)
        labels = np.ascontiguousarray(labels.numpy().reshape(t, z, x, y).transpose(2, 3, 1, 0))
        view = self.view
        self._clean(labels, prep.spacing)
        ed, es = _phase_frames(labels, view.classes[0], self.ed_frame)
        frames = sorted({ed, es})
        result = Segmentation(labels, frames=(ed, es))
        if self.subpixel_areas:
            per_slice = probs.reshape(t, z, *probs.shape[1:]).transpose(1, 0, 2, 3, 4)
            pixel = prep.spacing[0] * prep.spacing[1]
            result.areas = subpixel_areas(per_slice, labels, view.classes, pixel)
        # each pass's labels at ED and ES: the ensemble's members, else the TTA passes
        members = []
        if pred.members:
            idx = _frame_index(frames, z)
            members = [m[idx] for m in pred.members]
        elif self.tta:
            members = self._tta_members(stack, pred.labels, frames, z, ref)
        if self.tta and members:
            result.tta = _tta_from_members(members, list(range(len(frames))), z, view)
        if view.name == "sa" and members:
            result.pass_counts = self._pass_counts(members, frames, (ed, es), stack, crop_tf, prep)
            result.uncertainty = phenotype_spread(result.pass_counts, prep.voxel_ml)
        if prep.turn is not None and not prep.turn.identity:
            result.labels = prep.turn.invert(result.labels)
        return result

    def _clean(self, labels: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
        """Post-process an ``X x Y x Z x T`` label map in place: largest components, holes
        filled, then the short axis's endocardial convention (``spacing``: in-plane, mm)."""
        view = self.view
        postprocess(labels, self.largest_component, self.fill_holes, view.classes, view.fill_holes)
        if self.convention != "none":
            apply_convention(labels, self.convention, spacing)
        return labels

    def _tta_members(
        self, stack, net_labels: torch.Tensor, frames: list[int], z: int, reference=None
    ) -> list[torch.Tensor]:
        """The prediction at ``frames`` (ED and ES) and two more on the input flipped along each
        in-plane axis (predicted, flipped back): the test-time-augmentation passes."""
        idx = _frame_index(frames, z)
        x = torch.as_tensor(stack[idx]).as_subclass(torch.Tensor)
        ref = torch.as_tensor(stack[:z] if reference is None else reference)
        ref = ref.as_subclass(torch.Tensor)
        members = [net_labels[idx]]
        for axis in self.tta_axes:
            pred = self.predict_labels(
                torch.flip(x, dims=(axis,)), z, reference=torch.flip(ref, dims=(axis,))
            )
            members.append(torch.flip(pred, dims=(axis,)))
        return members

    def _pass_counts(
        self,
        members: list[torch.Tensor],
        frames: list[int],
        ed_es: tuple[int, int],
        stack,
        crop_tf,
        prep: Prepared,
    ) -> np.ndarray:
        """Voxel counts per label at ED and ES of each pass's own labels (``members``: the
        ``frames`` of each pass on the network grid), mapped back onto the input grid (nearest
        neighbour) and post-processed like the final labels: passes x 2 x labels."""
        x, y, z, _ = prep.shape
        n = len(frames)
        view = self.view
        out = np.zeros((len(members), 2, view.n_classes), dtype=np.int64)
        for i, member in enumerate(members):
            lab = self.pipe.invert(member.float(), stack, crop_tf, mode="nearest")
            lab = lab.round().to(torch.uint8).numpy().reshape(n, z, x, y).transpose(2, 3, 1, 0)
            lab = np.ascontiguousarray(lab)
            self._clean(lab, prep.spacing)
            for j, frame in enumerate(ed_es):
                at = lab[..., frames.index(frame)].ravel()
                out[i, j] = np.bincount(at, minlength=view.n_classes)[: view.n_classes]
        return out

    def lone_frame_warning(self, image: str | os.PathLike, reference=None) -> str:
        """A one-line warning when ``image`` is one 3D frame, segmented with no ``reference`` by a
        network that reads each slice's twin in the cine's first frame ("" otherwise)."""
        if not self.net_cfg.reference or reference is not None or len(_nifti_shape(image)) == 4:
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
        ndim = len(_nifti_shape(image))
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


def _argmax(values: torch.Tensor) -> torch.Tensor:
    """Class index over dim 1 as uint8 (``max().indices``: argmax is 6x slower on the CPU)."""
    return values.max(1).indices.to(torch.uint8)


def _frame_index(frames: Sequence[int], z: int) -> torch.Tensor:
    """Rows of a frame-major (T*Z) stack that hold ``frames``."""
    return torch.cat([torch.arange(f * z, (f + 1) * z) for f in frames])


def _phase_frames(labels: np.ndarray, label: int = 1, ed_frame: str = "max_volume"):
    """ED and ES frames of an ``X x Y x Z x T`` label map as the phenotypes choose them: the
    frames where ``label`` (the LV cavity of the short axis) is largest (or the first frame,
    ``ed_frame="first"``) and smallest among the frames that have it."""
    volume = np.count_nonzero(labels == label, axis=(0, 1, 2))
    return definitions.ed_frame(volume, ed_frame), definitions.es_frame(volume)


def _tta_from_members(
    members: list[torch.Tensor], frames: list[int], z: int, view: ViewSpec = VIEWS["sa"]
) -> dict[str, float]:
    """Mean Dice per class, at ``frames``, between the unflipped prediction (``members[0]``) and
    each flipped one: how stable the segmentation is under test-time augmentation."""
    idx = _frame_index(frames, z)
    base = members[0][idx].numpy()
    scores: dict[str, list[float]] = {view.keys[c]: [] for c in view.classes}
    for member in members[1:]:
        pred = member[idx].numpy()
        for cls in view.classes:
            scores[view.keys[cls]].append(dice(base == cls, pred == cls))
    return {k: float(np.mean(v)) for k, v in scores.items()}


def _nifti_shape(path) -> tuple[int, ...]:
    import nibabel as nib

    return tuple(nib.load(path).shape)


class _CineDataset(torch.utils.data.Dataset):
    """Reads and preprocesses one subject per item; failures come back as an error string."""

    def __init__(self, rows: list[dict], segmenter: Segmenter):
        self.rows = rows
        self.view = segmenter.view
        self.prepare = segmenter.prepare

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Prepared:
        row = self.rows[i]
        t0 = time.perf_counter()
        if row.get("error"):  # failed upstream (no image, DICOM conversion): keep its reason
            return Prepared(row["eid"], (0, 0, 0, 0), None, error=row["error"], source="model")
        try:
            if row.get("provided"):
                prep = Prepared(row["eid"], (0, 0, 0, 0), None, source="provided")
                # the phenotypes read the segmentation's header first, then the image's; an
                # unreadable file is reported by check_provided_segmentation below
                with contextlib.suppress(ImageReadError):
                    interval = read_frame_interval(row["provided"])
                    if interval[0] is None:
                        interval = read_frame_interval(row["image"])
                    prep.frame_interval_ms, prep.frame_interval_source = interval
                return prep
            cine = load_cine(row["image"])
            if cine.data.size == 0:
                raise ImageReadError(f"{row['image']}: empty image {cine.data.shape}")
            if self.view.single_slice and cine.data.shape[2] != 1:
                raise ImageReadError(
                    f"{row['image']}: the {self.view.name} view is a single-slice cine "
                    f"(X x Y x 1 x frames), this image is {cine.data.shape}"
                )
            problems = spacing_problems(cine.spacing, row["image"])
            if problems:  # the input contract: a spacing no scanner writes
                raise InputError("; ".join(problems))
            prep = self.prepare(cine.data, cine.spacing, row["eid"], affine=cine.affine)
            prep.frame_interval_ms = cine.frame_interval_ms
            prep.frame_interval_source = cine.frame_interval_source
        except Exception as exc:  # one bad subject must not stop the batch
            return Prepared(row["eid"], (0, 0, 0, 0), None, error=_reason(exc), source="model")
        prep.source = "model"
        prep.seconds = time.perf_counter() - t0
        return prep


def _as_is(item):
    return item


def _reason(exc: Exception) -> str:
    return without_reprs(f"{type(exc).__name__}: {exc}".replace("\n", " "))


def _job_rows(manifest: pd.DataFrame, eids: Sequence[str], view: ViewSpec) -> list[dict]:
    """What each subject brings for ``view``: its image, a provided segmentation (the first
    non-empty of the view's provided columns), or why there is nothing to segment."""
    by_eid = {str(r["eid"]): r for r in manifest.to_dict("records")}

    def text(value) -> str:
        return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)

    rows = []
    for eid in eids:
        r = by_eid.get(str(eid), {})
        image = text(r.get(view.name))
        column = next((c for c in view.provided if text(r.get(c))), "")
        error = ""
        if view.name == "sa" and not r.get("ok", True):
            error = f"conversion: {r.get('reason') or 'failed'}"
        elif text(r.get(f"{view.name}_reason")):  # another view's DICOM conversion failed
            error = f"conversion: {text(r.get(f'{view.name}_reason'))}"
        elif not image:
            error = f"no {view.name} image in the manifest"
        rows.append(
            {
                "eid": str(eid),
                "image": image,
                "provided": text(r.get(column)) if column else "",
                "provided_column": column,
                "error": error,
            }
        )
    return rows


def _use_provided(row: dict, view: ViewSpec, out_dir: Path) -> str:
    """Check a provided segmentation against its image; return the label map to use: the file
    itself when it is in the view's own convention, else a copy mapped onto the view's labels."""
    column = row["provided_column"]
    lut = view.provided[column]
    allowed = {i: f"label {i}" for i in range(1, len(lut))}
    if column == view.seg_name:
        allowed = view.labels
    problem = check_provided_segmentation(row["image"], row["provided"], allowed=allowed)
    if problem:
        raise ValueError(problem)
    if column == view.seg_name:
        return str(Path(row["provided"]).resolve())
    labels = np.rint(load_cine(row["provided"], dtype=np.float32).data).astype(np.uint8)
    dest = out_dir / row["eid"] / f"{view.seg_name}.nii.gz"
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_areas(dest)  # a model's areas from an earlier run would not be these labels'
    mapped = view.map_provided(column, labels)
    save_labels_like(
        dest, mapped if len(_nifti_shape(row["provided"])) == 4 else mapped[..., 0], row["image"]
    )
    return str(dest.resolve())


def segment_batch(
    manifest: pd.DataFrame,
    eids: Sequence[str],
    out_dir: str | os.PathLike,
    table_path: str | os.PathLike,
    segmenter: Segmenter,
    num_workers: int = 1,
    progress: bool = True,
    config: dict | None = None,
    root: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Segment ``eids`` of ``manifest`` (absolute image paths in the view's column, optional
    provided segmentations) into ``out_dir/<eid>/<seg_name>.nii.gz`` and write the status table
    (eid, the view's ``seg_name`` column, source, ok, reason, seconds, frame interval, tta_dice_*
    and, for the short axis, the phenotype uncertainties ``<IDP>_sd``) to ``table_path``.

    Failure reasons show input paths relative to ``root`` (the manifest's folder; see
    :func:`cardiopheno.io.paths.display_path`), never absolute."""
    view = segmenter.view
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = _job_rows(manifest, eids, view)
    loader = torch.utils.data.DataLoader(
        _CineDataset(rows, segmenter),
        batch_size=None,
        collate_fn=_as_is,
        num_workers=num_workers,
        prefetch_factor=2 if num_workers else None,
    )
    records = []
    nan = float("nan")
    tta_keys = [view.keys[c] for c in view.classes]
    uncertainty_keys = list(UNCERTAINTY_COLUMNS) if view.name == "sa" else []
    for row, prep in tqdm(
        zip(rows, loader, strict=True), total=len(rows), disable=not progress, desc=view.name
    ):
        t0 = time.perf_counter()
        rec = {
            "eid": prep.eid,
            view.seg_name: "",
            "source": prep.source or "model",
            "ok": False,
            "reason": prep.error,
            "frame_interval_ms": prep.frame_interval_ms or nan,
            "frame_interval_source": prep.frame_interval_source,
            **{f"tta_dice_{k}": nan for k in tta_keys},
            **{c: nan for c in uncertainty_keys},
        }
        try:
            if prep.source == "provided":
                rec.update({view.seg_name: _use_provided(row, view, out_dir), "ok": True})
            elif not prep.error:
                seg = segmenter.segment_prepared(prep)
                dest = out_dir / prep.eid / f"{view.seg_name}.nii.gz"
                dest.parent.mkdir(parents=True, exist_ok=True)
                save_segmentation(dest, seg, row["image"], view)
                rec.update({view.seg_name: str(dest.resolve()), "ok": True})
                rec.update({f"tta_dice_{k}": v for k, v in seg.tta.items()})
                rec.update({c: seg.uncertainty.get(c, nan) for c in uncertainty_keys})
        except Exception as exc:  # recorded, and the batch goes on
            rec.update(ok=False, reason=_reason(exc))
        if not rec["ok"]:
            rec["reason"] = scrub_paths(rec["reason"], (row["image"], row["provided"]), root)
            log.warning("subject %s (%s) failed: %s", prep.eid, view.name, rec["reason"])
        rec["seconds"] = prep.seconds + time.perf_counter() - t0
        records.append(rec)
    columns = [
        "eid",
        view.seg_name,
        "source",
        "ok",
        "reason",
        "seconds",
        "frame_interval_ms",
        "frame_interval_source",
        *(f"tta_dice_{k}" for k in tta_keys),
        *uncertainty_keys,
    ]
    table = pd.DataFrame(records, columns=columns)
    table["ok"] = table["ok"].astype(bool)
    table["seconds"] = table["seconds"].astype(float)
    table["frame_interval_ms"] = table["frame_interval_ms"].astype(float)
    write_table(
        table,
        table_path,
        status_columns(view),
        config=config,
        model_sha256=segmenter.sha256,
        extra={
            "view": view.name,
            "checkpoint": str(segmenter.checkpoint),
            "precision": segmenter.precision,
            "flip_ensemble": str(len(segmenter.flips)),
            "convention": segmenter.convention,
        },
    )
    log.info(
        "%s: segmented %d of %d subjects (%s)",
        view.name,
        int(table["ok"].sum()),
        len(table),
        table_path,
    )
    return table


def run_batch(
    manifest_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    table_path: str | os.PathLike,
    settings: dict,
    threads: int | None = None,
    config: dict | None = None,
    view: str = "sa",
    ed_frame: str = "max_volume",
) -> pd.DataFrame:
    """Segment ``view`` for every subject of a (batch) manifest with the ``segmentation`` config
    section (``settings``; a view's own checkpoint under ``checkpoints``). ``ed_frame`` is how the
    phenotypes choose ED (config ``phenotypes.ed_frame``, a param of the segment rules so that
    changing it re-runs them): the TTA Dice and the ``*_sd`` columns are read at ED and ES.

    ``threads`` (the rule's) are split between the network (torch threads) and one data-loader
    worker reading and preprocessing the next scans; with one thread the reading is done inline.
    """
    from cardiopheno.io.manifest import load_manifest

    threads = max(1, int(threads or 1))
    if str(manifest_path).endswith(".parquet"):
        # The DICOM conversion's status table (eid, sa, seg_sa, ok, reason, ...): subjects whose
        # conversion failed are recorded as failed here, with the conversion's reason.
        manifest = read_table(manifest_path)
        manifest["ok"] = manifest["ok"].astype(bool)
    else:
        manifest = load_manifest(manifest_path, check_files=False)
    checkpoint = settings.get("checkpoint") if view == "sa" else None
    checkpoint = checkpoint or (settings.get("checkpoints") or {}).get(view) or None
    eids = manifest["eid"].astype(str).tolist()
    if view != "sa" and not Path(checkpoint or view_spec(view).default_checkpoint).is_file():
        # a view without a model is recorded, subject by subject, not a crashed workflow
        return _without_model(eids, view, checkpoint, out_dir, table_path, config)
    segmenter = Segmenter(
        checkpoint=checkpoint,
        device=settings.get("device", "auto"),
        slice_batch=settings.get("slice_batch") or None,
        heart_crop=bool(settings.get("heart_crop", True)),
        tta=bool(settings.get("tta", True)),
        largest_component=bool(settings.get("largest_component", True)),
        fill_holes=bool(settings.get("fill_holes", True)),
        threads=threads,
        flip_ensemble=int(settings.get("flip_ensemble", 1)),
        precision=settings.get("precision", "auto"),
        view=view,
        ed_frame=ed_frame,
        convention=resolve_convention(settings.get("convention", "auto"), config),
    )
    workers = min(int(settings.get("loader_workers", 1)), threads - 1) if threads > 1 else 0
    return segment_batch(
        manifest,
        eids,
        out_dir,
        table_path,
        segmenter,
        num_workers=max(0, workers),
        progress=bool(settings.get("progress", True)),
        config=config,
        root=input_root(config),
    )


def resolve_convention(setting: str, config: dict | None) -> str:
    """The short axis's endocardial convention for ``segmentation.convention``: ``auto`` is
    ``ukbb`` for a cohort of real scans (``cohort.source: manifest``, the UK Biobank case this
    pipeline reproduces) and ``acdc`` for the synthetic demo, whose phantom has a smooth
    endocardium already (so its tables stay as they were); ``ukbb`` or ``acdc`` by name."""
    if setting == "auto":
        source = ((config or {}).get("cohort") or {}).get("source", "synthetic")
        return "ukbb" if source == "manifest" else "acdc"
    return check_convention(setting)


def _without_model(eids, view: str, checkpoint, out_dir, table_path, config) -> pd.DataFrame:
    spec = view_spec(view)
    reason = f"no {view} model: {Path(checkpoint or spec.default_checkpoint).name} not found"
    log.warning("%s (%d subjects)", reason, len(eids))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    nan = float("nan")
    table = pd.DataFrame(
        {
            "eid": [str(e) for e in eids],
            spec.seg_name: "",
            "source": "model",
            "ok": False,
            "reason": reason,
            "seconds": 0.0,
            "frame_interval_ms": nan,
            "frame_interval_source": "none",
            **{f"tta_dice_{spec.keys[c]}": nan for c in spec.classes},
        }
    )
    write_table(table, table_path, status_columns(spec), config=config, extra={"view": view})
    return table
