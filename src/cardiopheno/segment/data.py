"""Training data for the segmentation network: ACDC HDF5, NIfTI image/label pairs, the synthetic
cohort, all reduced to one form: preprocessed 2D slices on the network grid.

Each source yields :class:`LabelledVolume` records (``N x X x Y`` slices of one labelled frame plus
in-plane spacing); :func:`build_slice_cache` runs them through the very preprocessing inference
uses (:class:`~cardiopheno.segment.transforms.SlicePipeline`) and stores the slices as a
compressed ``.npz`` (images quantised to 8 bits after normalisation to [0, 1]: 0.4% steps, far
below the noise added by augmentation), so training neither re-reads nor re-resamples images.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM
from cardiopheno.io.nifti import ImageReadError, load_cine
from cardiopheno.io.tables import read_any
from cardiopheno.segment.orientation import canonical_turn
from cardiopheno.segment.transforms import PreprocessConfig, SlicePipeline, map_acdc_labels
from cardiopheno.views import view_spec

log = logging.getLogger(__name__)

_ACDC_NAME = re.compile(r"patient(\d{3})_frame(\d{2})\.h5$")


@dataclass
class LabelledVolume:
    """One labelled frame: ``image`` and ``label`` are ``N x X x Y`` (slices first)."""

    subject: str  # grouping key for the patient-level split
    volume: str  # unique per frame, for per-volume validation Dice
    image: np.ndarray
    label: np.ndarray
    spacing_xy: tuple[float, float]
    source: str
    # optional ``N x (classes - 1) x X x Y`` share of each pixel in each labelled structure
    # (partial volume, in [0, 1]): soft training targets, for sub-pixel areas
    soft: np.ndarray | None = None
    # optional ``N x X x Y``: the same slices at the cine's first frame (end-diastole on ECG-
    # triggered cines), the input channel of a network with ``NetworkConfig.reference``
    reference: np.ndarray | None = None


# ---------------------------------------------------------------------------------------- ACDC
# Candidate slice spacings (ACDC spans 5-10 mm) and the LV's typical elongation at ED: slices
# holding LV x spacing over the largest epicardial diameter. 1.1 is the median over the 80 ACDC
# patients at 10 mm for stacks of up to 12 slices, 5 mm for longer ones. ACDC's pixels are
# 0.7-1.9 mm (../shared/data/README.md).
ACDC_SPACINGS_MM = (5.0, 10.0)
ACDC_LV_ELONGATION = 1.1
ACDC_PIXEL_RANGE_MM = (0.7, 1.9)


def acdc_spacing(voxel_volume_mm3: float, ed_label: np.ndarray) -> tuple[float, float]:
    """In-plane pixel size (mm) of an ACDC patient, from the voxel volume (all that the HDF5
    export keeps) and the ED label map (``N x X x Y``, our labels).

    The voxel volume is pixel^2 x slice spacing; which spacing, 5 or 10 mm, is chosen among those
    giving a pixel in ACDC's range by anatomy: the one that makes the LV at ED (cavity and
    myocardium) closest to ``ACDC_LV_ELONGATION`` times as long (slices with LV x spacing) as it
    is wide (diameter of the largest slice's area).
    A wrong choice scales the heart by sqrt(2): patient094 (10 slices) is 37 mm wide and 2.7
    times as long as wide at 10 mm, 52 mm and 0.96 at 5 mm. Without LV labels: 10 mm for stacks
    of up to 12 slices, else 5 mm.
    """
    lv = np.isin(np.asarray(ed_label), (LV_CAVITY, LV_MYOCARDIUM))
    n_lv, area = int(lv.any(axis=(1, 2)).sum()), int(lv.sum(axis=(1, 2)).max(initial=0))
    if n_lv == 0:
        dz = 10.0 if lv.shape[0] <= 12 else 5.0
    else:

        def misfit(dz: float) -> float:
            px = np.sqrt(voxel_volume_mm3 / dz)
            elongation = n_lv * dz / (2.0 * np.sqrt(area / np.pi) * px)
            return abs(np.log(elongation / ACDC_LV_ELONGATION))

        lo, hi = ACDC_PIXEL_RANGE_MM
        plausible = [d for d in ACDC_SPACINGS_MM if lo <= np.sqrt(voxel_volume_mm3 / d) <= hi]
        dz = min(plausible or ACDC_SPACINGS_MM, key=misfit)
    px = float(np.sqrt(voxel_volume_mm3 / dz))
    return (px, px)


def acdc_ed_spacing(root: str | os.PathLike, patient: str, voxel_volume_mm3: float, ed_frame: int):
    """:func:`acdc_spacing` of ``patient`` from its ED frame's labels (both frames share it)."""
    _, label = read_acdc_volume(Path(root) / "volumes" / f"{patient}_frame{ed_frame:02d}.h5")
    return acdc_spacing(voxel_volume_mm3, label)


def acdc_patient_ids(spec: str | Iterable[str]) -> list[str]:
    """``"1-12,21-32"`` or ``["patient001", 5]`` to ``["patient001", ..., "patient032"]``."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in items:
        item = str(item).strip().removeprefix("patient")
        if not item:
            continue
        if "-" in item:
            lo, hi = (int(v) for v in item.split("-"))
            out.extend(f"patient{i:03d}" for i in range(lo, hi + 1))
        else:
            out.append(f"patient{int(item):03d}")
    return out


def read_acdc_volume(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``image`` and ``label`` of one ACDC HDF5 frame as ``N x X x Y`` (labels in our order)."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as h5:
            image = np.asarray(h5["image"], dtype=np.float32)
            label = np.asarray(h5["label"])
    except (OSError, KeyError) as exc:
        raise ImageReadError(
            f"{path}: cannot read ACDC HDF5 ({type(exc).__name__}: {exc})"
        ) from exc
    if image.ndim != 3 or image.shape != label.shape:
        raise ImageReadError(
            f"{path}: image {image.shape} and label {label.shape} must be equal 3D"
        )
    # stored (z, y, x); our slices are (z, x, y) like a NIfTI's X x Y plane
    return image.transpose(0, 2, 1), map_acdc_labels(label).transpose(0, 2, 1)


def acdc_volumes(
    root: str | os.PathLike, patients: Iterable[str], phases: tuple[str, ...] = ("ED", "ES")
) -> Iterator[LabelledVolume]:
    """The ED and ES frames (or those of ``phases``) of each patient in ``root``
    (``volumes/*.h5`` and ``reference.csv``)."""
    root = Path(root)
    ref = pd.read_csv(root / "reference.csv").set_index("patient")
    wanted = set(patients)
    for path in sorted((root / "volumes").glob("patient*_frame*.h5")):
        m = _ACDC_NAME.search(path.name)
        if not m or f"patient{m.group(1)}" not in wanted:
            continue
        pid = f"patient{m.group(1)}"
        r = ref.loc[pid]
        frame = {"ED": int(r.ed_frame), "ES": int(r.es_frame)}
        if int(m.group(2)) not in {frame[p] for p in phases}:
            continue
        image, label = read_acdc_volume(path)
        spacing = acdc_ed_spacing(root, pid, float(r.voxel_volume_mm3), int(r.ed_frame))
        ed_path = root / "volumes" / f"{pid}_frame{frame['ED']:02d}.h5"
        ed_image = image if path == ed_path else read_acdc_volume(ed_path)[0]
        yield LabelledVolume(pid, path.stem, image, label, spacing, "acdc", reference=ed_image)


def acdc_es_volumes(root: str | os.PathLike, patients: Iterable[str]) -> list[str]:
    """The volume names (``patient001_frame12``) of the end-systolic frames of ``patients``."""
    ref = pd.read_csv(Path(root) / "reference.csv").set_index("patient")
    return [f"{pid}_frame{int(ref.loc[pid, 'es_frame']):02d}" for pid in patients]


def basal_slices(cache: SliceCache, volumes: Iterable[str], label: int) -> np.ndarray:
    """Mask of the slices of ``volumes`` from the base (ACDC stacks start there) through the
    first one whose label holds ``label``. With the RV this is where the RV meets the right
    atrium: ACDC's experts stop drawing the RV there while still drawing the LV, and a model
    that has not learnt their convention overestimates RVESV."""
    wanted = np.isin(cache.volume, list(volumes))
    holds = (cache.label == label).any(axis=(1, 2))
    mask = np.zeros(len(cache), dtype=bool)
    starts = np.flatnonzero(np.r_[True, cache.volume[1:] != cache.volume[:-1]])
    for start, end in zip(starts, np.r_[starts[1:], len(cache)], strict=True):
        if wanted[start]:
            found = np.flatnonzero(holds[start:end])
            if len(found):
                mask[start : start + found[0] + 1] = True
    return mask


# ------------------------------------------------------------------------------ NIfTI pairs
def nifti_pair_volumes(
    manifest: str | os.PathLike, frames: str = "labelled"
) -> Iterator[LabelledVolume]:
    """Image/label NIfTI pairs from a manifest with columns ``eid``, ``image``, ``label`` (paths
    relative to the manifest; 3D or 4D, label on the image grid, labels in our convention).
    Every frame with any label is used (``frames="labelled"``). Each frame's phase reference is
    the image's first frame, or, where the optional ``reference`` column names one, that file's
    (its first frame): the ED image of a row whose image is a lone ES frame, as ACDC and M&Ms
    give ED and ES as separate files."""
    manifest = Path(manifest)
    table = read_any(manifest)
    missing = {"eid", "image", "label"} - set(table.columns)
    if missing:
        raise ValueError(f"{manifest}: missing column(s) {sorted(missing)}")
    for row in table.itertuples(index=False):
        img = load_cine(manifest.parent / str(row.image))
        lab = load_cine(manifest.parent / str(row.label), dtype=np.float32)
        if img.data.shape != lab.data.shape:
            raise ImageReadError(
                f"{row.eid}: label {lab.data.shape} is not on the image grid {img.data.shape}"
            )
        labels = np.rint(lab.data).astype(np.uint8)
        if labels.max() > 3:
            raise ValueError(f"{row.eid}: labels must be 0..3 (ours), got max {labels.max()}")
        reference = _reference_of(manifest, row, img.data)
        for t in range(img.data.shape[3]):
            if frames == "labelled" and not labels[..., t].any():
                continue
            yield LabelledVolume(
                str(row.eid),
                f"{row.eid}_t{t:02d}",
                img.data[..., t].transpose(2, 0, 1),
                labels[..., t].transpose(2, 0, 1),
                img.spacing[:2],
                "nifti",
                reference=reference,
            )


def _reference_of(manifest: Path, row, image: np.ndarray) -> np.ndarray:
    """Z x X x Y: the first frame of the row's ``reference`` file when given, else the image's."""
    path = str(getattr(row, "reference", "") or "")
    if path in ("", "nan"):
        return image[..., 0].transpose(2, 0, 1)
    ref = load_cine(manifest.parent / path).data
    if ref.shape[:3] != image.shape[:3]:
        raise ValueError(
            f"{manifest}: {row.eid}: reference {path} has shape {ref.shape[:3]}, its image "
            f"{image.shape[:3]}"
        )
    return ref[..., 0].transpose(2, 0, 1)


# -------------------------------------------------------------------------- synthetic cohort
def _training_frames(labels: np.ndarray, n: int, rng: np.random.Generator) -> list[int]:
    """The frames of an ``X x Y x Z x T`` label map to train on: those of largest and smallest
    label 1 (ED and ES for the short axis) and randomly drawn others, ``n`` in all."""
    area = (labels == 1).sum(axis=(0, 1, 2))
    chosen = {int(np.argmax(area)), int(np.argmin(area))}
    rest = [t for t in range(labels.shape[3]) if t not in chosen]
    extra = max(0, min(n - len(chosen), len(rest)))
    chosen.update(int(t) for t in rng.choice(rest, size=extra, replace=False))
    return sorted(chosen)


def synthetic_volumes(
    cohort_dir: str | os.PathLike, frames_per_subject: int = 6, seed: int = 0, view: str = "sa"
) -> Iterator[LabelledVolume]:
    """Frames of one view of a synthetic cohort written by ``cardiopheno.synth`` (``manifest.csv``
    with the view's column, ground truth at ``truth/labels/<eid>.nii.gz`` for the short axis and
    ``truth/labels/<eid>_<view>.nii.gz`` for the others); subjects listed in
    ``truth/faults.parquet`` (deliberately faulty short-axis scans) are skipped. The frames of
    largest and smallest label 1 (ED and ES for the short axis) and randomly drawn others."""
    cohort_dir = Path(cohort_dir)
    manifest = read_any(cohort_dir / "manifest.csv")
    faults_path = cohort_dir / "truth" / "faults.parquet"
    faulty = set(read_any(faults_path)["eid"].astype(str)) if faults_path.is_file() else set()
    rng = np.random.default_rng(seed)
    for row in manifest.itertuples(index=False):
        eid = str(row.eid)
        if eid in faulty:
            continue
        truth = cohort_dir / "truth" / "labels" / f"{eid}{view_spec(view).file_suffix}.nii.gz"
        try:
            img = load_cine(cohort_dir / str(getattr(row, view)))
            lab = load_cine(truth, dtype=np.float32)
        except ImageReadError as exc:
            log.warning("synthetic subject %s skipped: %s", eid, exc)
            continue
        labels = np.rint(lab.data).astype(np.uint8)
        data = img.data
        if view_spec(view).canonical:  # as inference turns the view (segment.orientation)
            turn = canonical_turn(img.affine)
            data, labels = turn.apply(data), turn.apply(labels)
        for t in _training_frames(labels, frames_per_subject, rng):
            yield LabelledVolume(
                eid,
                f"{eid}_t{t:02d}",
                data[..., t].transpose(2, 0, 1),
                labels[..., t].transpose(2, 0, 1),
                turn.spacing(img.spacing)[:2] if view_spec(view).canonical else img.spacing[:2],
                "synthetic",
                reference=data[..., 0].transpose(2, 0, 1),
            )


def wholeheart_volumes(
    path: str | os.PathLike, view: str, n_slices: int, seed: int = 0
) -> Iterator[LabelledVolume]:
    """``n_slices`` single-slice ``view`` images resliced from a real whole-heart segmentation
    with random SynthSeg-style intensities (``cardiopheno.synth.wholeheart``), turned into the
    canonical orientation as inference turns real cines; labels in the view's convention.
    Slices are grouped 25 to a subject for the split."""
    from cardiopheno.synth.wholeheart import load_anatomy, synth_slices

    spec = view_spec(view)
    anatomy = load_anatomy(path)
    for k, (vid, image, seg4, affine, px) in enumerate(synth_slices(anatomy, view, n_slices, seed)):
        turn = canonical_turn(affine)
        labels = (seg4 == 4).astype(np.uint8) if view == "la_2ch" else seg4
        if max(spec.labels) < int(labels.max()):
            raise ValueError(f"{view}: whole-heart labels exceed the view's {spec.labels}")
        yield LabelledVolume(
            f"wholeheart_{view}_{seed}_{k // 25}",
            vid,
            turn.apply(image)[None],
            turn.apply(labels)[None],
            (px, px),
            "wholeheart",
        )


def aorta_volumes(
    n_subjects: int, seed: int, frames_per_subject: int = 10
) -> Iterator[LabelledVolume]:
    """Aortic cines rendered on the fly (``cardiopheno.synth.aorta``) for subjects of the synthetic
    population (``sample_population(n_subjects, seed)``), with each vessel's lumen coverage as
    soft targets: the frames of largest and smallest ascending aorta and randomly drawn others."""
    from cardiopheno.synth.aorta import simulate_aorta
    from cardiopheno.synth.population import sample_population

    pop = sample_population(n_subjects, seed)
    rng = np.random.default_rng([seed, 0xA0])
    for i in range(len(pop)):
        s = simulate_aorta(pop.iloc[i], seed, i)
        eid = str(pop.iloc[i]["eid"])
        for t in _training_frames(s.labels, frames_per_subject, rng):
            yield LabelledVolume(
                eid,
                f"{eid}_t{t:02d}",
                s.image[..., t].transpose(2, 0, 1).astype(np.float32),
                s.labels[..., t].transpose(2, 0, 1),
                s.zooms[:2],
                "synthetic_aorta",
                soft=s.coverage[:, :, :, t].transpose(2, 3, 0, 1).astype(np.float32),
            )


# ---------------------------------------------------------------------------------- the cache
def build_slice_cache(
    volumes: Iterable[LabelledVolume],
    path: str | os.PathLike,
    cfg: PreprocessConfig | None = None,
) -> Path:
    """Preprocess every slice onto the network grid and save ``image`` (uint8, value/255),
    ``label``, ``subject``, ``volume`` and ``source`` arrays to a compressed ``.npz``, ``soft``
    (uint8 share x 255, ``N x (classes - 1) x roi x roi``, resampled bilinearly) when every volume
    has soft targets, and ``reference`` (each slice at the cine's first frame, uint8) when every
    volume has one. A frame and its reference are normalised together, as inference normalises
    a cine's frames together."""
    cfg = cfg or PreprocessConfig()
    pipe = SlicePipeline(cfg)
    images, labels, softs, refs, subjects, vols, sources = [], [], [], [], [], [], []
    for vol in volumes:
        n = vol.image.shape[0]
        both = vol.image if vol.reference is None else np.concatenate([vol.image, vol.reference])
        img = np.rint(np.asarray(pipe.preprocess(both, vol.spacing_xy)) * 255).astype(np.uint8)
        images.append(img[:n])
        if vol.reference is not None:
            refs.append(img[n:])
        lab = pipe.preprocess_labels(vol.label, vol.spacing_xy)
        labels.append(np.asarray(lab, dtype=np.uint8))
        if vol.soft is not None:
            flat = vol.soft.reshape(-1, *vol.soft.shape[2:])  # (N x C) x X x Y
            grid = np.asarray(pipe.resample(flat, vol.spacing_xy)).reshape(n, -1, *lab.shape[1:])
            softs.append(np.rint(np.clip(grid, 0.0, 1.0) * 255).astype(np.uint8))
        subjects += [vol.subject] * n
        vols += [vol.volume] * n
        sources += [vol.source] * n
    if not images:
        raise ValueError(f"{path}: no labelled volumes to cache")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    extra = {"soft": np.concatenate(softs)} if softs and len(softs) == len(images) else {}
    if refs and len(refs) == len(images):
        extra["reference"] = np.concatenate(refs)
    np.savez_compressed(
        tmp,
        **extra,
        image=np.concatenate(images),
        label=np.concatenate(labels),
        subject=np.array(subjects),
        volume=np.array(vols),
        source=np.array(sources),
        preprocess=np.array(repr(cfg.to_dict())),
    )
    os.replace(tmp, path)
    log.info("cached %d slices from %d volumes to %s", len(subjects), len(set(vols)), path)
    return path


@dataclass
class SliceCache:
    image: np.ndarray  # N x roi x roi uint8
    label: np.ndarray  # N x roi x roi uint8
    subject: np.ndarray
    volume: np.ndarray
    source: np.ndarray
    soft: np.ndarray | None = None  # N x (classes - 1) x roi x roi uint8 (share x 255), or None
    # how many times each slice counts in a training epoch (None: once); set after loading
    repeats: np.ndarray | None = None
    reference: np.ndarray | None = None  # N x roi x roi uint8: the slice at the first frame

    @classmethod
    def load(cls, paths: str | os.PathLike | Iterable[str | os.PathLike]) -> SliceCache:
        """One cache from several; soft targets are kept only when every part has them. A path
        given N times is loaded once with its slices counted N times (``repeats``): two copies
        of a volume side by side would read as one volume to 2.5D context."""
        paths = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        times = Counter(str(p) for p in paths)
        parts = [np.load(p, allow_pickle=False) for p in times]
        keys = ("image", "label", "subject", "volume", "source")
        cache = cls(*(np.concatenate([p[k] for p in parts]) for k in keys))
        if any(n > 1 for n in times.values()):
            cache.repeats = np.repeat(list(times.values()), [len(p["subject"]) for p in parts])
        for key, what in (("soft", "soft targets"), ("reference", "first-frame slices")):
            if all(key in p for p in parts):
                setattr(cache, key, np.concatenate([p[key] for p in parts]))
            elif any(key in p for p in parts):
                log.warning("%s dropped: not every cache has them (%s)", what, paths)
        return cache

    def subset(self, mask: np.ndarray) -> SliceCache:
        return SliceCache(
            self.image[mask],
            self.label[mask],
            self.subject[mask],
            self.volume[mask],
            self.source[mask],
            None if self.soft is None else self.soft[mask],
            None if self.repeats is None else self.repeats[mask],
            None if self.reference is None else self.reference[mask],
        )

    def __len__(self) -> int:
        return len(self.subject)
