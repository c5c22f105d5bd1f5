"""Where training slices come from (:class:`TrainingData`: ACDC, NIfTI pairs, the synthetic
cohort, rendered aortas, resliced whole-heart anatomies, prebuilt caches), their slice caches
(:func:`build_caches`) and the weights of ACDC's slices in an epoch (:func:`acdc_repeats`)."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cardiopheno import RV_CAVITY
from cardiopheno.segment.data import (
    LabelledVolume,
    SliceCache,
    acdc_es_volumes,
    acdc_patient_ids,
    acdc_volumes,
    aorta_volumes,
    basal_slices,
    build_slice_cache,
    nifti_pair_volumes,
    synthetic_volumes,
    wholeheart_volumes,
)
from cardiopheno.segment.transforms import PreprocessConfig
from cardiopheno.views import view_spec

log = logging.getLogger(__name__)

VolumeSource = Callable[[], Iterator[LabelledVolume]]


@dataclass
class TrainingData:
    """Where training data comes from; any combination may be given."""

    acdc_root: str | None = None
    acdc_train: str = "1-12,21-32,41-52,61-72,81-92"
    acdc_val: str = "13-16,33-36,53-56,73-76,93-96"
    # weights of the ACDC training slices (times each counts in an epoch): all acdc_repeat, the
    # end-systolic ones acdc_es_repeat more (the small ventricles and the basal RV at ES are the
    # weak point), and the ES ones from the base through the expert's first RV slice that count
    # times 1 + acdc_basal_es_repeat (where model and experts disagree on where the RV ends)
    acdc_repeat: int = 1
    acdc_es_repeat: int = 0
    acdc_basal_es_repeat: int = 0
    # ACDC's training patients cached twice: on the pixel_mm grid and on the working grid that
    # inference uses (finest_pixel_mm); both copies count as above
    acdc_both_scales: bool = False
    nifti_manifest: str | None = None
    synthetic_cohort: str | None = None
    synthetic_frames: int = 6
    view: str = "sa"  # the view read from the synthetic cohort
    # aortic cines rendered on the fly with partial-volume (soft) targets: subjects, seed
    synthetic_aorta: int = 0
    synthetic_aorta_seed: int = 103
    # real whole-heart anatomies resliced along the view's plane with random intensities
    # (synth.wholeheart): label NIfTIs or folders of blood-pool surfaces, slices from each, seed
    wholeheart: list[str] = field(default_factory=list)
    wholeheart_slices: int = 1000
    wholeheart_seed: int = 0
    caches: list[str] = field(default_factory=list)  # prebuilt .npz caches (training side)
    val_caches: list[str] = field(default_factory=list)


def build_caches(
    data: TrainingData,
    work_dir: str | os.PathLike,
    pre_cfg: PreprocessConfig | None = None,
    working_cfg: PreprocessConfig | None = None,
) -> tuple[list[Path], list[Path]]:
    """Preprocess each source into ``work_dir``/*.npz (reused when present); (train, val) caches.
    ACDC's validation patients form the validation set; other sources are split by subject.
    With ``data.acdc_both_scales`` ACDC's training patients are cached a second time with
    ``working_cfg`` (a config with a ``finest_pixel_mm``)."""
    work_dir = Path(work_dir)
    pre_cfg = pre_cfg or PreprocessConfig()
    train_paths = [Path(p) for p in data.caches]
    val_paths = [Path(p) for p in data.val_caches]
    if data.acdc_both_scales and (working_cfg is None or working_cfg.finest_pixel_mm is None):
        raise ValueError(
            "acdc_both_scales: the working grid is undefined; give a preprocess config with "
            "finest_pixel_mm set (the short-axis view's has one)"
        )
    if data.acdc_root:
        acdc_train, acdc_val = _acdc_caches(data, work_dir, pre_cfg, working_cfg)
        train_paths += acdc_train
        val_paths += acdc_val
    train_paths += [
        _cached(work_dir / f"{name}.npz", volumes, pre_cfg)
        for name, volumes in _generated_sources(data)
    ]
    if not train_paths:
        raise ValueError(
            "no training data: give acdc_root, nifti_manifest, synthetic_cohort, "
            "synthetic_aorta, wholeheart or caches"
        )
    return train_paths, val_paths


def _cached(path: Path, volumes: VolumeSource, cfg: PreprocessConfig) -> Path:
    """``path``, the slice cache of ``volumes()`` preprocessed with ``cfg``, built unless present."""
    if not path.is_file():
        build_slice_cache(volumes(), path, cfg)
    return path


def _acdc_caches(
    data: TrainingData,
    work_dir: Path,
    pre_cfg: PreprocessConfig,
    working_cfg: PreprocessConfig | None,
) -> tuple[list[Path], list[Path]]:
    """ACDC's training patients (on the working grid too with ``data.acdc_both_scales``) and its
    validation patients: (train, val) caches."""
    root = data.acdc_root
    train_ids = acdc_patient_ids(data.acdc_train)
    train = [_cached(work_dir / "acdc_train.npz", lambda: acdc_volumes(root, train_ids), pre_cfg)]
    if data.acdc_both_scales:
        train.append(
            _cached(
                work_dir / "acdc_train_working_grid.npz",
                lambda: acdc_volumes(root, train_ids),
                working_cfg,
            )
        )
    val = []
    if data.acdc_val:
        val.append(
            _cached(
                work_dir / "acdc_val.npz",
                lambda: acdc_volumes(root, acdc_patient_ids(data.acdc_val)),
                pre_cfg,
            )
        )
    return train, val


def _generated_sources(data: TrainingData) -> list[tuple[str, VolumeSource]]:
    """(cache name, volumes) of the sources beside ACDC, in this order: NIfTI pairs, the
    synthetic cohort's view, rendered aortas, each whole-heart anatomy."""
    sources: list[tuple[str, VolumeSource]] = []
    if data.nifti_manifest:
        sources.append(("nifti", functools.partial(nifti_pair_volumes, data.nifti_manifest)))
    if data.synthetic_cohort:
        volumes = functools.partial(
            synthetic_volumes, data.synthetic_cohort, data.synthetic_frames, view=data.view
        )
        sources.append((f"synthetic{view_spec(data.view).file_suffix}", volumes))
    if data.synthetic_aorta:
        n, seed = data.synthetic_aorta, data.synthetic_aorta_seed
        volumes = functools.partial(aorta_volumes, n, seed, data.synthetic_frames)
        sources.append((f"synthetic_aorta_{n}_{seed}", volumes))
    for i, anatomy in enumerate(data.wholeheart):
        n, seed = data.wholeheart_slices, data.wholeheart_seed + i
        volumes = functools.partial(wholeheart_volumes, anatomy, data.view, n, seed)
        sources.append((f"wholeheart{i}_{data.view}_{n}_{seed}", volumes))
    return sources


def acdc_repeats(cache: SliceCache, data: TrainingData) -> np.ndarray:
    """How many times each slice of ``cache`` counts in an epoch under ``data``'s ACDC weights
    (``TrainingData.acdc_repeat`` and after); other sources' slices keep their count."""
    counts = np.ones(len(cache), dtype=np.int64) if cache.repeats is None else cache.repeats
    train_ids = acdc_patient_ids(data.acdc_train)
    es_volumes = acdc_es_volumes(data.acdc_root, train_ids)
    acdc = (cache.source == "acdc") & np.isin(cache.subject, train_ids)
    es = acdc & np.isin(cache.volume, es_volumes)
    basal = es & basal_slices(cache, es_volumes, RV_CAVITY)
    weight = np.where(acdc, max(1, data.acdc_repeat), 1) + np.where(es, data.acdc_es_repeat, 0)
    weight = weight * np.where(basal, 1 + data.acdc_basal_es_repeat, 1)
    log.info("ACDC training slices: %d, of which ES %d, basal ES %d; counted %s times",
             acdc.sum(), es.sum(), basal.sum(), sorted(set(weight[acdc])))  # fmt: skip
    return counts * weight
