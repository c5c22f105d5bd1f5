"""The phenotype registry: discovers family modules and runs them on one subject.

A *family* is a module in this package that exposes

- ``FAMILY``: its name (the name config ``phenotypes.families`` lists),
- ``OUTPUTS``: a list of :class:`PhenotypeSpec` (name, unit, description), declared next to
- ``compute(ctx: SubjectContext) -> dict[str, float]``: its single entry function,
- optionally ``REQUIRES``: names of families whose values it reads from ``ctx.values``,
- optionally ``VIEW``: the view whose segmentation it reads (default ``"sa"``, the short-axis
  stack in ``ctx.labels``); any other view comes from ``ctx.views[VIEW]`` (:class:`ViewData`).
  When the subject has no such view, the registry does not call ``compute`` and every output of
  the family is NaN with the reason ``"no <view> view"`` in ``ctx.reasons``.
- optionally ``NEEDS_IMAGE = True``: the family reads the cine itself (``ctx.image`` or the
  view's ``ViewData.image``; strain), so the batch stage loads it; others never pay for reading it.

A family that cannot give a value (a missing covariate, say) returns NaN for it and says why
with ``ctx.explain(names, reason)`` (or, for a family reading several views, a free-text
``ctx.note(message)``, e.g. frames left out); after :func:`compute_phenotypes`, ``ctx.reasons`` maps each
such output to its reason and :func:`reasons_text` joins them for a table column.

Families share one :class:`SubjectContext` per subject, which computes the expensive things once
(per-frame label volumes, ED/ES frames, BSA, heart rate) and caches them. The registry runs the
enabled families in dependency order, so a new family is one module, one test and
one line of config: nothing else needs editing.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import pkgutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from types import ModuleType

import numpy as np

from cardiopheno import LV_CAVITY, definitions
from cardiopheno.definitions import ED_FRAME_MODES, MYOCARDIAL_DENSITY_G_PER_ML  # noqa: F401
from cardiopheno.io.areas import read_areas
from cardiopheno.io.contract import label_problems, spacing_problems
from cardiopheno.io.nifti import Cine, load_cine
from cardiopheno.phenotypes.plausibility import apply_plausibility
from cardiopheno.views import view_spec

log = logging.getLogger(__name__)

SHORT_AXIS_VIEW = "sa"  # the view of SubjectContext.labels
# Modules of this package that are not families.
_NOT_FAMILIES = frozenset({"registry", "cli", "batch", "plausibility"})


class PhenotypeError(ValueError):
    """A subject's segmentation cannot give phenotypes; the message names the subject and cause."""


@dataclass(frozen=True)
class PhenotypeSpec:
    """One output of a family: column name, unit ("" when dimensionless) and description."""

    name: str
    unit: str
    description: str
    dtype: str = "float"  # "float" or "int" (frame indices)


@dataclass
class ViewData:
    """One view's segmentation for the families that read it (``VIEW`` = its name).

    ``labels`` is X x Y x slices x frames (a 3D map gains a frame axis; single-slice cines such as
    ``ao`` and ``la_4ch`` have one slice) in that view's label map; ``spacing`` is (x, y, slice
    spacing or thickness) in mm; ``frame_interval_ms`` from the header (None when unknown).
    """

    labels: np.ndarray
    spacing: tuple[float, float, float]
    frame_interval_ms: float | None = None
    image: np.ndarray | None = None
    affine: np.ndarray | None = None
    # label -> per-frame sub-pixel area (mm2) measured by the segmentation model
    # (cardiopheno.io.areas); None: areas are pixel counts of ``labels``
    areas: dict[int, np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.labels.ndim == 3:
            self.labels = self.labels[..., np.newaxis]
        if self.labels.ndim != 4:
            raise PhenotypeError(f"expected a 3D or 4D label map, got {self.labels.shape}")

    @property
    def n_frames(self) -> int:
        return int(self.labels.shape[3])


@dataclass
class SubjectContext:
    """One subject's inputs plus lazily computed quantities shared by all families.

    ``labels`` is X x Y x slices x frames (uint8, cardiopheno label convention); ``spacing`` is
    (x, y, slice spacing) in mm; ``frame_interval_ms`` comes from the NIfTI header (None when the
    header does not say). ``covariates`` may hold ``height_cm`` and ``weight_kg`` for BSA.
    ``views`` holds the subject's other views by name (``"ao"``, ``"la_4ch"``, ...), absent when
    the subject has none; ``labels`` and ``spacing`` are None for a subject without a short-axis
    stack (its short-axis families give NaN, "no sa view"). ``reasons`` collects, per output
    name, why a family left it NaN.
    """

    labels: np.ndarray | None
    spacing: tuple[float, float, float] | None
    frame_interval_ms: float | None = None
    covariates: Mapping[str, float] = field(default_factory=dict)
    image: np.ndarray | None = None
    affine: np.ndarray | None = None
    ed_frame_mode: str = "max_volume"
    eid: str = ""
    values: dict[str, float] = field(default_factory=dict)
    views: dict[str, ViewData] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # per-frame curves a family publishes (name -> one value per frame of its view), written by
    # the batch stage to results/phenotypes/curves/ for figures and later models
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    # per-family settings (config phenotypes.<family>), e.g. options["strain"]["slices"]
    options: Mapping[str, Mapping] = field(default_factory=dict)

    def note(self, message: str) -> None:
        """Record why values are missing or were computed with less data than usual."""
        self.notes.append(message)

    def __post_init__(self) -> None:
        if self.ed_frame_mode not in ED_FRAME_MODES:
            raise PhenotypeError(
                f"{self.eid}: ed_frame must be one of {ED_FRAME_MODES}, got {self.ed_frame_mode!r}"
            )
        if self.labels is None:
            return
        if self.labels.ndim == 3:
            self.labels = self.labels[..., np.newaxis]
        if self.labels.ndim != 4:
            raise PhenotypeError(
                f"{self.eid}: expected a 3D or 4D label map, got {self.labels.shape}"
            )
        if self.affine is None:
            self.affine = np.diag([*self.spacing, 1.0])

    @property
    def n_frames(self) -> int:
        return int(self.labels.shape[3])

    def view(self, name: str) -> ViewData | None:
        """The named view's data, None when the subject lacks it (``"sa"``: ``self.labels``)."""
        if name in self.views:
            return self.views[name]
        if name == SHORT_AXIS_VIEW and self.labels is not None:
            return ViewData(
                self.labels, self.spacing, self.frame_interval_ms, self.image, self.affine
            )
        return None

    def explain(self, names: Sequence[str], reason: str) -> None:
        """Record why the outputs ``names`` are NaN (kept in ``self.reasons``)."""
        for name in names:
            self.reasons[name] = reason

    @property
    def voxel_volume_ml(self) -> float:
        """Voxel volume with the slice *spacing* as through-plane size (gaps filled), in mL."""
        return float(np.prod(self.spacing)) / 1000.0

    @cached_property
    def label_counts(self) -> np.ndarray:
        """Voxel counts, shape (frames, 4): column k counts label k in each frame."""
        # count_nonzero of a uint8 comparison per frame: ~5x faster than np.bincount (which
        # widens every voxel to intp first); measured in benchmarks/phenotype_speed.py
        counts = np.zeros((self.n_frames, 4), dtype=np.int64)
        n_vox = int(np.prod(self.labels.shape[:3]))
        for t in range(self.n_frames):
            frame = self.labels[..., t]
            for label in (1, 2, 3):
                counts[t, label] = np.count_nonzero(frame == label)
            counts[t, 0] = n_vox - counts[t, 1:].sum()
        return counts

    @cached_property
    def volumes_ml(self) -> np.ndarray:
        """Per-frame label volumes in mL, shape (frames, 4) (column = label)."""
        return self.label_counts * self.voxel_volume_ml

    @property
    def lv_volume_curve(self) -> np.ndarray:
        return self.volumes_ml[:, LV_CAVITY]

    @cached_property
    def ed_frame(self) -> int:
        """ED: frame of maximum LV cavity volume, or frame 0 with ``ed_frame_mode='first'``
        (:func:`cardiopheno.definitions.ed_frame`)."""
        self._require_lv()
        return definitions.ed_frame(self.lv_volume_curve, self.ed_frame_mode)

    @cached_property
    def es_frame(self) -> int:
        """ES: frame of minimum LV cavity volume among the frames where the LV is labelled.

        Frames with no LV label at all are not systole but unlabelled (segmentations a cohort
        brings often contour only ED and ES, as Sunnybrook's experts did).
        """
        self._require_lv()
        return definitions.es_frame(self.lv_volume_curve, self.label_counts[:, LV_CAVITY] > 0)

    def _require_lv(self) -> None:
        if not self.label_counts[:, LV_CAVITY].any():
            raise PhenotypeError(f"{self.eid or 'subject'}: no LV cavity (label 1) in any frame")

    @cached_property
    def bsa_m2(self) -> float:
        """Mosteller BSA = sqrt(height_cm x weight_kg / 3600) in m2; NaN without covariates."""
        try:
            h = float(self.covariates.get("height_cm", math.nan))
            w = float(self.covariates.get("weight_kg", math.nan))
        except (TypeError, ValueError):
            return math.nan
        if not (h > 0 and w > 0):
            return math.nan
        return math.sqrt(h * w / 3600.0)

    @cached_property
    def heart_rate_bpm(self) -> float:
        """60000 / (frames x frame interval ms): one cardiac cycle per cine; NaN when unknown."""
        if not self.frame_interval_ms or self.frame_interval_ms <= 0 or self.n_frames < 2:
            return math.nan
        return 60000.0 / (self.n_frames * self.frame_interval_ms)

    def label_volume(self, label: int, frame: int) -> float:
        return float(self.volumes_ml[frame, label])


@dataclass(frozen=True)
class Family:
    """A discovered family module."""

    name: str
    outputs: tuple[PhenotypeSpec, ...]
    requires: tuple[str, ...]
    module: ModuleType
    view: str = SHORT_AXIS_VIEW
    needs_image: bool = False  # NEEDS_IMAGE: the batch stage reads the view's cine for it

    def compute(self, ctx: SubjectContext) -> dict[str, float]:
        return self.module.compute(ctx)


def _check_module(module: ModuleType) -> Family | None:
    if not all(hasattr(module, a) for a in ("FAMILY", "OUTPUTS", "compute")):
        return None
    outputs = tuple(module.OUTPUTS)
    if not all(isinstance(o, PhenotypeSpec) for o in outputs):
        raise TypeError(f"{module.__name__}.OUTPUTS must be a list of PhenotypeSpec")
    requires = tuple(getattr(module, "REQUIRES", ()))
    return Family(
        module.FAMILY,
        outputs,
        requires,
        module,
        getattr(module, "VIEW", SHORT_AXIS_VIEW),
        bool(getattr(module, "NEEDS_IMAGE", False)),
    )


def discover_families(package: str = "cardiopheno.phenotypes") -> dict[str, Family]:
    """Every family module in ``package`` (FAMILY/OUTPUTS/compute), keyed by family name."""
    pkg = importlib.import_module(package)
    families: dict[str, Family] = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_") or info.name in _NOT_FAMILIES:
            continue
        fam = _check_module(importlib.import_module(f"{package}.{info.name}"))
        if fam is None:
            continue
        if fam.name in families:
            raise ValueError(f"two phenotype modules declare FAMILY={fam.name!r}")
        families[fam.name] = fam
    return families


def resolve_families(
    enabled: Sequence[str] | None = None, package: str = "cardiopheno.phenotypes"
) -> list[Family]:
    """The enabled families (all when None) in dependency order; unknown names are an error.

    A family whose REQUIRES names another family pulls it in, so values it reads exist.
    """
    available = discover_families(package)
    wanted = list(available) if enabled is None else list(enabled)
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise ValueError(
            f"unknown phenotype famil{'y' if len(unknown) == 1 else 'ies'} {unknown}; "
            f"available: {sorted(available)}"
        )
    # depth-first: each family after the ones it requires, otherwise in the order given
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in visiting:
            raise ValueError(f"phenotype families require each other in a cycle: {chain}")
        if name not in available:
            raise ValueError(f"family {chain[-2]!r} requires unknown family {name!r}")
        visiting.add(name)
        for dep in available[name].requires:
            visit(dep, (*chain, dep))
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        visit(name, (name,))
    return [available[n] for n in order]


def output_specs(families: Sequence[Family]) -> list[PhenotypeSpec]:
    """All outputs of ``families`` in order (names must be unique across families)."""
    specs: list[PhenotypeSpec] = []
    seen: dict[str, str] = {}
    for fam in families:
        for spec in fam.outputs:
            if spec.name in seen:
                raise ValueError(f"{spec.name} declared by both {seen[spec.name]} and {fam.name}")
            seen[spec.name] = fam.name
            specs.append(spec)
    return specs


def compute_phenotypes(ctx: SubjectContext, families: Sequence[Family]) -> dict[str, float]:
    """Run ``families`` (already in dependency order) on one subject; return name -> value.

    Every declared output is present: a value a family did not return is NaN. A family that
    returns an undeclared name is a bug and raises. A family whose ``VIEW`` the subject lacks is
    not run: its outputs are NaN with the reason "no <view> view" in ``ctx.reasons``. Values that
    cannot be right (an ejection fraction at or below 0 %, say) become NaN with their reason
    (:mod:`cardiopheno.phenotypes.plausibility`, rules declared in the input contract).
    """
    for fam in families:
        declared = {s.name for s in fam.outputs}
        if ctx.view(fam.view) is None:
            ctx.values.update(dict.fromkeys(declared, math.nan))
            ctx.explain([s.name for s in fam.outputs], f"no {fam.view} view")
            continue
        values = fam.compute(ctx)
        extra = set(values) - declared
        if extra:
            raise RuntimeError(f"family {fam.name} returned undeclared outputs {sorted(extra)}")
        ctx.values.update({n: values.get(n, math.nan) for n in declared})
    apply_plausibility(ctx, families)
    return {s.name: ctx.values.get(s.name, math.nan) for s in output_specs(families)}


def reason_lines(ctx: SubjectContext, names: Sequence[str] | None = None) -> list[str]:
    """``ctx.reasons``, outputs grouped by reason ("AAo_distensibility, DAo_distensibility: no
    central pulse pressure"), one line per reason; only ``names`` when given."""
    groups: dict[str, list[str]] = {}
    for name, reason in ctx.reasons.items():
        if names is None or name in names:
            groups.setdefault(reason, []).append(name)
    return [f"{', '.join(n)}: {r}" for r, n in groups.items()]


def reasons_text(ctx: SubjectContext, names: Sequence[str] | None = None) -> str:
    """:func:`reason_lines` as one line ("...: no central pulse pressure; ...")."""
    return "; ".join(reason_lines(ctx, names))


def load_labels(path: str | os.PathLike, view: str = SHORT_AXIS_VIEW, eid: str = "") -> Cine:
    """A view's label map as uint8, after the input contract's checks: whole numbers within the
    view's label set and a plausible voxel spacing; else :class:`PhenotypeError` naming the file,
    the values and what was expected (nothing is truncated or dropped silently)."""
    seg = load_cine(path, dtype=None)
    problems = label_problems(seg.data, path, view) + spacing_problems(seg.spacing, path)
    if problems:
        named = f"{eid}: " if eid and eid not in str(path) else ""  # paths often hold the eid
        raise PhenotypeError(named + "; ".join(problems))
    return replace(seg, data=seg.data.astype(np.uint8, copy=False))


def view_from_files(
    seg_path: str | os.PathLike,
    image_path: str | os.PathLike | None = None,
    eid: str = "",
    view: str = SHORT_AXIS_VIEW,
) -> ViewData:
    """A view's :class:`ViewData` from its segmentation NIfTI (3D or 4D, checked by
    :func:`load_labels` against ``view``'s labels), reading timing from its header; when that has
    no frame interval, the image's is used (if given). The image must be on the segmentation's
    grid."""
    seg = load_labels(seg_path, view, eid)
    image, interval = None, seg.frame_interval_ms
    if image_path:
        cine = load_cine(image_path)
        if cine.data.shape != seg.data.shape:
            raise PhenotypeError(
                f"{eid or Path(seg_path).name}: segmentation {seg.data.shape} and image "
                f"{cine.data.shape} differ in shape"
            )
        image, interval = cine.data, interval or cine.frame_interval_ms
    areas = read_areas(seg_path, seg.data.shape[3] if seg.data.ndim == 4 else 1)
    return ViewData(seg.data, seg.spacing, interval, image, seg.affine, areas)


def context_from_files(
    seg_path: str | os.PathLike,
    image_path: str | os.PathLike | None = None,
    covariates: Mapping[str, float] | None = None,
    ed_frame_mode: str = "max_volume",
    eid: str = "",
    views: Mapping[str, ViewData | str | os.PathLike] | None = None,
    options: Mapping[str, Mapping] | None = None,
) -> SubjectContext:
    """Build a context from the short-axis segmentation NIfTI (see :func:`view_from_files`),
    plus the subject's other views when given (name -> :class:`ViewData` or the path of its
    segmentation; empty paths are left out)."""
    sa = view_from_files(seg_path, image_path, eid)
    return SubjectContext(
        labels=sa.labels,
        spacing=sa.spacing,
        frame_interval_ms=sa.frame_interval_ms,
        covariates=dict(covariates or {}),
        image=sa.image,
        affine=sa.affine,
        ed_frame_mode=ed_frame_mode,
        eid=eid,
        views={
            view_spec(name).name: v
            if isinstance(v, ViewData)
            else view_from_files(v, eid=eid, view=view_spec(name).name)
            for name, v in (views or {}).items()
            if isinstance(v, ViewData) or v
        },
        options=dict(options or {}),
    )
