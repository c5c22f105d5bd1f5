"""The input contract: what an image, a label map or a covariate must be for its numbers to mean
anything, defined once in ``cardiopheno/data/input_contract.yaml`` and used by the one-subject
commands (``cardiopheno segment``, ``cardiopheno phenotypes``) and by the workflow's checks.

Two ways in, with the same ranges and the same words:

- scalar checks for one subject: :func:`check_covariate` (a message, "" when plausible),
  :func:`image_findings` (errors and warnings of one image), :func:`label_problems`
  (a label map's values against its view's label set), :func:`refuse_overwriting_inputs`;
- a table check for a cohort: :func:`covariate_problems` (one row per implausible value) and
  :func:`check_covariates_frame` (those rows as messages naming file, eid, column, value and
  what was expected).

A value outside its range names the unit the user probably meant ("height_cm 1.7: height is in
cm, expected 40-250; did you give metres (170 cm)?"). Messages carry no object reprs and no
absolute paths beyond the file names the caller passes.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

CONTRACT_FILE = Path(str(files("cardiopheno") / "data" / "input_contract.yaml"))


class InputError(ValueError):
    """An input that breaks the contract; the message names the file, the value and what was
    expected, in one line."""


@cache
def contract() -> dict:
    """The contract's ranges as read from :data:`CONTRACT_FILE` (read once)."""
    return yaml.safe_load(CONTRACT_FILE.read_text())


# ------------------------------------------------------------------------------- covariates
@dataclass(frozen=True)
class LikelyUnit:
    """A unit a value outside its range was probably given in: the range it then falls in and
    the factor that converts it to the contract's unit."""

    unit: str
    lo: float
    hi: float
    factor: float


@dataclass(frozen=True)
class CovariateRange:
    name: str  # column of the covariates table
    what: str  # words for it ("height")
    unit: str
    lo: float
    hi: float
    likely: tuple[LikelyUnit, ...] = field(default_factory=tuple)


@cache
def covariate_ranges() -> dict[str, CovariateRange]:
    """Column name -> its :class:`CovariateRange`, from the contract."""
    out = {}
    for name, spec in contract()["covariates"].items():
        likely = tuple(
            LikelyUnit(u["unit"], float(u["range"][0]), float(u["range"][1]), float(u["factor"]))
            for u in spec.get("likely", ())
        )
        lo, hi = (float(v) for v in spec["range"])
        out[name] = CovariateRange(name, spec["what"], spec["unit"], lo, hi, likely)
    return out


def _number(value: float) -> str:
    return f"{value:.4g}"


def check_covariate(name: str, value, label: str | None = None) -> str:
    """Why ``value`` of covariate ``name`` cannot be right, or "" when it is plausible.

    Missing values (None, NaN, "") and names the contract does not know pass: whether a value is
    needed is the caller's business. Text that is not a number is a problem. The message starts
    with ``label`` (a command-line option, say) instead of ``name`` when given.
    """
    spec = covariate_ranges().get(name)
    name = label or name
    if spec is None or value is None or (isinstance(value, str) and not value.strip()):
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"{name} {value!r}: not a number ({spec.what} in {spec.unit})"
    if math.isnan(number):
        return ""
    expected = f"{spec.what} is in {spec.unit}, expected {spec.lo:g}-{spec.hi:g}"
    if not math.isfinite(number):
        return f"{name} {value}: not a finite number ({expected})"
    if spec.lo <= number <= spec.hi:
        return ""
    hint = next((u for u in spec.likely if u.lo <= number <= u.hi), None)
    if hint is not None:
        return (
            f"{name} {_number(number)}: {expected}; did you give {hint.unit} "
            f"({_number(number * hint.factor)} {spec.unit})?"
        )
    if number <= 0 < spec.lo:
        return f"{name} {_number(number)}: {spec.what} must be positive ({expected})"
    return f"{name} {_number(number)}: {expected}"


def check_covariate_values(
    values: Mapping[str, object], labels: Mapping[str, str] | None = None
) -> list[str]:
    """:func:`check_covariate` on each item of ``values`` (name -> value, each message starting
    with ``labels[name]`` when given); the problems found."""
    labels = labels or {}
    return [
        p for name, value in values.items() if (p := check_covariate(name, value, labels.get(name)))
    ]


def covariate_problems(table: pd.DataFrame) -> pd.DataFrame:
    """One row per implausible covariate value of ``table``: ``eid``, ``column``, ``value``,
    ``line`` (of a CSV with a header: row position + 2) and ``problem``. Only the columns the
    contract knows are read; missing values and text that is not a number are left to the
    table's own checks (:mod:`cardiopheno.io.covariates`), so nothing is reported twice."""
    rows = []
    eids = table["eid"].astype(str) if "eid" in table.columns else pd.Series("", table.index)
    for name in covariate_ranges():
        if name not in table.columns:
            continue
        numbers = pd.to_numeric(table[name], errors="coerce")
        for pos, (eid, number) in enumerate(zip(eids, numbers, strict=True)):
            if pd.isna(number):
                continue
            problem = check_covariate(name, float(number))
            if problem:
                rows.append((eid, name, float(number), pos + 2, problem))
    return pd.DataFrame(rows, columns=["eid", "column", "value", "line", "problem"])


def check_covariates_frame(table: pd.DataFrame, path: str | os.PathLike) -> list[str]:
    """Every implausible covariate of ``table`` (read from ``path``) as a message naming the
    file, the eid (and the CSV line), the column, the value and what was expected."""
    return [
        f"{path}: eid {r.eid} (line {r.line}): {r.problem}"
        for r in covariate_problems(table).itertuples(index=False)
    ]


# ------------------------------------------------------------------------------- images
@dataclass(frozen=True)
class ImageLimits:
    in_plane_spacing_mm: tuple[float, float]
    slice_spacing_mm: tuple[float, float]
    frames: tuple[int, int]
    min_in_plane: int
    near_blank_fraction: float


@cache
def image_limits() -> ImageLimits:
    spec = contract()["image"]
    return ImageLimits(
        tuple(float(v) for v in spec["in_plane_spacing_mm"]),
        tuple(float(v) for v in spec["slice_spacing_mm"]),
        tuple(int(v) for v in spec["frames"]),
        int(spec["min_in_plane"]),
        float(spec["near_blank_fraction"]),
    )


@dataclass
class Findings:
    """What the contract found in one input: ``errors`` refuse it, ``warnings`` are shown."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def raise_errors(self) -> None:
        """Raise :class:`InputError` with the first error (each already names its file)."""
        if self.errors:
            raise InputError("; ".join(self.errors))


def spacing_problems(spacing: Sequence[float], path: str | os.PathLike) -> list[str]:
    """Voxel spacing (x, y, slice) in mm that is not finite or outside the contract's ranges."""
    limits = image_limits()
    text = " x ".join(f"{float(s):.4g}" for s in spacing[:3])
    out = []
    for axes, values, (lo, hi) in (
        ("in-plane", spacing[:2], limits.in_plane_spacing_mm),
        ("slice", spacing[2:3], limits.slice_spacing_mm),
    ):
        bad = [float(v) for v in values if not (math.isfinite(float(v)) and lo <= float(v) <= hi)]
        if bad:
            out.append(
                f"{path}: voxel spacing {text} mm: {axes} spacing {_number(bad[0])} mm is outside "
                f"{lo:g}-{hi:g} mm (NIfTI pixdim); is the header's spacing or unit wrong?"
            )
    return out


def image_findings(
    data: np.ndarray,
    spacing: Sequence[float],
    path: str | os.PathLike,
    view: str | None = None,
) -> Findings:
    """Contract checks of one ``X x Y x Z x T`` image (``spacing`` in mm, x, y, slice).

    Errors: non-finite voxels, a constant image, spacing outside the contract's ranges, too few
    in-plane pixels or too many frames. Warnings: a near-blank image (almost every voxel at the
    background value), blank frames, and a shape unlike ``view`` (one slice given as the
    short-axis stack; a stack given as a single-slice view).
    """
    found = Findings(errors=spacing_problems(spacing, path))
    limits = image_limits()
    if data.ndim == 3:
        data = data[..., np.newaxis]
    nx, ny, nz, nt = data.shape
    if min(nx, ny) < limits.min_in_plane:
        found.errors.append(
            f"{path}: in-plane matrix {nx} x {ny}; expected at least {limits.min_in_plane} pixels "
            "each way (is this an X x Y x slices x frames image?)"
        )
    if nt > limits.frames[1]:
        found.errors.append(
            f"{path}: {nt} frames; expected at most {limits.frames[1]} (are the axes in the "
            "order X x Y x slices x frames?)"
        )
    finite = np.isfinite(data)
    n_bad = int(finite.size - np.count_nonzero(finite))
    if n_bad:
        found.errors.append(f"{path}: {n_bad} voxels are NaN or infinite; expected finite values")
        data = np.where(finite, data, 0)
    _intensity_findings(data, path, found, limits)
    found.warnings += view_shape_warnings(data.shape, path, view)
    return found


def _intensity_findings(
    data: np.ndarray, path: str | os.PathLike, found: Findings, limits: ImageLimits
) -> None:
    lo, hi = float(data.min()), float(data.max())
    if lo == hi:
        found.errors.append(f"{path}: every voxel is {lo:g}; a constant image has nothing to see")
        return
    # voxels clearly above the darkest: a heart in a cine fills far more than 1 % of the field
    bright = float(np.count_nonzero(data > lo + 0.05 * (hi - lo))) / data.size
    if bright < limits.near_blank_fraction:
        found.warnings.append(
            f"{path}: near-blank image: only {100 * bright:.2g} % of voxels are above the "
            "background; the segmentation will likely be empty"
        )
    order = "F" if data.flags.f_contiguous else "C"
    frame_std = data.reshape(-1, data.shape[3], order=order).std(axis=0)
    blank = np.nonzero(frame_std == 0)[0]
    if blank.size and blank.size < data.shape[3]:
        shown = ", ".join(str(int(t)) for t in blank[:5]) + (" ..." if blank.size > 5 else "")
        found.warnings.append(f"{path}: {blank.size} blank frame(s) (constant): {shown}")


def view_shape_warnings(
    shape: Sequence[int], path: str | os.PathLike, view: str | None
) -> list[str]:
    """A cine whose shape does not fit ``view``: one slice as the short-axis stack, or a stack
    of slices as a single-slice view (long-axis, aortic)."""
    from cardiopheno.views import VIEWS

    spec = VIEWS.get(view or "")
    if spec is None:
        return []
    nz = int(shape[2]) if len(shape) > 2 else 1
    singles = ", ".join(v for v, s in VIEWS.items() if s.single_slice)
    if not spec.single_slice and nz == 1:
        return [
            f"{path}: one slice given as {view} ({spec.title}), which is a stack of slices; "
            f"if it is a long-axis or aortic cine, give its view ({singles})"
        ]
    if spec.single_slice and nz > 1:
        return [
            f"{path}: {nz} slices given as {view} ({spec.title}), a single-slice cine; if it is "
            "a short-axis stack, give --view sa"
        ]
    return []


# ------------------------------------------------------------------------------- label maps
def label_problems(data: np.ndarray, path: str | os.PathLike, view: str = "sa") -> list[str]:
    """A label map whose values are not whole numbers, or not in ``view``'s label set (0 and the
    view's labels, :data:`cardiopheno.views.VIEWS`)."""
    from cardiopheno.views import view_spec

    spec = view_spec(view)
    allowed = (0, *spec.classes)
    names = ", ".join(f"{k} {v}" for k, v in {0: "background", **spec.labels}.items())
    if data.size == 0:
        return [f"{path}: an empty label map {tuple(data.shape)}"]
    out = []
    if not np.issubdtype(data.dtype, np.integer):
        finite = np.isfinite(data)
        if not finite.all():
            out.append(
                f"{path}: {int(finite.size - finite.sum())} label values are NaN or infinite"
            )
            data = np.where(finite, data, 0)
        fractional = data != np.round(data)
        if fractional.any():
            example = float(data[fractional].flat[0])
            out.append(
                f"{path}: {int(fractional.sum())} label values are not whole numbers (e.g. "
                f"{example:g}); a label map holds integers ({names})"
            )
            data = np.round(data)
    lo, hi = float(data.min()), float(data.max())
    if lo < 0 or hi > max(allowed):
        values = np.unique(data[(data < 0) | (data > max(allowed))])
        shown = ", ".join(f"{v:g}" for v in values[:5].astype(float))
        out.append(
            f"{path}: label value(s) {shown} not in the {view} view's labels ({names}); "
            "is it a map of another view or convention?"
        )
    return out


# ------------------------------------------------------------------------------- outputs
def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_bad_output(path: str | os.PathLike | None, suffixes: Sequence[str] = ()) -> None:
    """Raise :class:`InputError` when ``path`` is an existing folder, or does not end in one of
    ``suffixes`` (e.g. ``(".nii.gz", ".nii")``: the writer picks its format by the name)."""
    if not path:
        return
    if Path(path).is_dir():
        raise InputError(f"output {path} is a folder; give a file path")
    if suffixes and not str(path).endswith(tuple(suffixes)):
        raise InputError(f"output {path}: expected a file name ending in {' or '.join(suffixes)}")


def refuse_overwriting_inputs(
    outputs: Iterable[str | os.PathLike | None], inputs: Iterable[str | os.PathLike | None]
) -> None:
    """Raise :class:`InputError` when an output is one of the inputs: the same resolved path, or
    the same file under another name (a hard or symbolic link)."""
    ins = [Path(p) for p in inputs if p]
    for out in (Path(p) for p in outputs if p):
        for src in ins:
            if _same_file(out, src):
                same = "is" if out.resolve() == src.resolve() else "is the same file as"
                raise InputError(
                    f"output {out} {same} the input {src}; it would be overwritten: "
                    "give another output path"
                )


# ------------------------------------------------------------------------------- messages
_OBJECT_REPR = re.compile(r"<(?:[\w.]+\.)?(\w+) object at 0x[0-9a-fA-F]+>")


def without_reprs(text: str) -> str:
    """``text`` with object reprs (``<monai...Spacing object at 0x7f...>``) replaced by their
    class names (``Spacing``)."""
    return _OBJECT_REPR.sub(r"\1", text)


def readable(exc: BaseException) -> str:
    """One line for a person: the exception's first line without object reprs
    (:func:`without_reprs`); its type when the message is empty."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return without_reprs(text)
