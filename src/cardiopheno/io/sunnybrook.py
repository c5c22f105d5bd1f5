"""Sunnybrook Cardiac Data (Radau et al., MIDAS 2009; CC0): cine DICOM plus expert contours.

The DICOM is read with the project's converter (slices and frames ordered by geometry and
TriggerTime, not by file name). Contours ``IM-0001-NNNN-{i,o}contour-manual.txt`` belong to the
image whose InstanceNumber is NNNN; each line is ``x y`` = (column, row).

Rasterisation convention: contour coordinates are 0-based pixel-centre coordinates (pixel at row r,
column c has its centre at x = c, y = r), and ``skimage.draw.polygon`` labels a pixel when its
centre lies inside the polygon. Sunnybrook vertices sit on the half-pixel grid, so many centres lie
exactly on a contour: counting them all as inside inflates areas by about 2 %, counting none
deflates them by as much. Ties are broken as graphics rasterisers do (a fixed, tiny offset of the
sample point, here +0.002 px in x and +0.001 px in y), which makes the labelled area an unbiased
estimate of the polygon area: over all contours of both cases it matches the shoelace area to 0.1 %
(tests/test_sunnybrook.py).

Label map (project convention): 1 LV cavity = inside the endocardial (i) contour; 2 LV myocardium
= inside the epicardial (o) contour and outside the endocardial one (ED only: o-contours exist at
ED only). Images without an i-contour are unlabelled; ``labelled[k, t]`` says which are.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
from skimage.draw import polygon

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM
from cardiopheno.definitions import MYOCARDIAL_DENSITY_G_PER_ML
from cardiopheno.io.dicom import DicomCine, read_dicom_cine
from cardiopheno.io.nifti import Cine

log = logging.getLogger(__name__)

_TIE_BREAK = (2e-3, 1e-3)  # (x, y) pixels
_CONTOUR = re.compile(r"IM-\d+-(\d+)-([io])contour-manual\.txt$")


class SunnybrookCase(NamedTuple):
    image: Cine  # X x Y x slices x frames float32, geometry from the DICOM
    labels: np.ndarray  # X x Y x slices x frames uint8 (0 where unlabelled)
    labelled: np.ndarray  # slices x frames bool: an endocardial contour exists


def read_contour(path: str | os.PathLike) -> np.ndarray:
    """An (N, 2) array of (x = column, y = row) points."""
    pts = np.loadtxt(path, dtype=float, ndmin=2)
    if pts.shape[1] != 2 or len(pts) < 3:
        raise ValueError(f"{path}: expected at least 3 lines of 'x y', got shape {pts.shape}")
    return pts


def rasterise_contour(points: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) bool mask of the pixels whose centres lie inside the polygon (ties: see top)."""
    # Shifting the polygon by -eps is testing each centre at +eps: a deterministic tie-break.
    rr, cc = polygon(points[:, 1] - _TIE_BREAK[1], points[:, 0] - _TIE_BREAK[0], shape=(rows, cols))
    mask = np.zeros((rows, cols), dtype=bool)
    mask[rr, cc] = True
    return mask


def polygon_area(points: np.ndarray) -> float:
    """Shoelace area in pixels (independent check of the rasterisation)."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def contour_files(contour_dir: str | os.PathLike) -> dict[tuple[int, str], Path]:
    """{(instance number, "i" | "o"): path} for the contours under ``contour_dir``."""
    out = {}
    for p in sorted(Path(contour_dir).rglob("*contour-manual.txt")):
        m = _CONTOUR.search(p.name)
        if m:
            out[(int(m.group(1)), m.group(2))] = p
    if not out:
        raise FileNotFoundError(f"{contour_dir}: no IM-*-[io]contour-manual.txt files")
    return out


def load_sunnybrook_case(
    dicom_dir: str | os.PathLike, contour_dir: str | os.PathLike
) -> SunnybrookCase:
    """The cine, the expert label map on its grid, and which (slice, frame) images are labelled."""
    dcm: DicomCine = read_dicom_cine(dicom_dir, label=Path(dicom_dir).name)
    X, Y, Z, T = dcm.data.shape
    where = {int(n): (k, t) for (k, t), n in np.ndenumerate(dcm.instance_numbers) if n >= 0}
    labels = np.zeros((X, Y, Z, T), dtype=np.uint8)
    labelled = np.zeros((Z, T), dtype=bool)
    contours = contour_files(contour_dir)
    for (instance, kind), path in sorted(contours.items(), key=lambda kv: kv[0][1]):  # i before o
        if instance not in where:
            raise ValueError(f"{path}: no image with InstanceNumber {instance} in {dicom_dir}")
        k, t = where[instance]
        mask = rasterise_contour(read_contour(path), rows=Y, cols=X).T  # -> X x Y
        if kind == "i":
            labels[..., k, t][mask] = LV_CAVITY
            labelled[k, t] = True
        else:
            if (instance, "i") not in contours:
                raise ValueError(f"{path}: epicardial contour without an endocardial one")
            ring = mask & (labels[..., k, t] != LV_CAVITY)
            labels[..., k, t][ring] = LV_MYOCARDIUM
    image = Cine(dcm.data.astype(np.float32), dcm.affine, dcm.spacing, dcm.frame_interval_ms)
    log.info(
        "%s: %d labelled images on %d slices and %d frames",
        Path(dicom_dir).name,
        int(labelled.sum()),
        int(labelled.any(axis=1).sum()),
        int(labelled.any(axis=0).sum()),
    )
    return SunnybrookCase(image, labels, labelled)


def expert_lv_volumes(case: SunnybrookCase) -> dict:
    """LV EDV/ESV/SV/EF (and ED myocardial mass) from the expert contours.

    Volumes sum the contoured slices only (voxel volume uses the slice spacing, docs/phenotypes.md). ED and
    ES are the contoured frames of largest and smallest cavity volume over the slices contoured
    in every contoured frame; the frame carrying epicardial contours must be the ED frame.
    """
    image, labels, labelled = case
    frames = np.flatnonzero(labelled.any(axis=0))
    if len(frames) < 2:
        raise ValueError(f"need contours in two frames, found frames {frames.tolist()}")
    slices = np.flatnonzero(labelled[:, frames].all(axis=1))
    voxel_ml = image.voxel_volume_ml
    cavity = {
        int(t): float((labels[:, :, slices, t] == LV_CAVITY).sum()) * voxel_ml for t in frames
    }
    ed = max(cavity, key=cavity.get)
    es = min(cavity, key=cavity.get)
    myo_frames = [int(t) for t in frames if (labels[..., t] == LV_MYOCARDIUM).any()]
    edv, esv = cavity[ed], cavity[es]
    myo_ml = float((labels[:, :, :, ed] == LV_MYOCARDIUM).sum()) * voxel_ml
    return {
        "ED_frame": ed,
        "ES_frame": es,
        "epicardial_contour_frames": myo_frames,
        "contoured_frames": [int(t) for t in frames],
        "contoured_slices": [int(k) for k in slices],
        "n_frames": int(labels.shape[3]),
        "LVEDV": edv,
        "LVESV": esv,
        "LVSV": edv - esv,
        "LVEF": 100.0 * (edv - esv) / edv,
        "LVM": MYOCARDIAL_DENSITY_G_PER_ML * myo_ml,
        "frame_cavity_ml": {str(t): v for t, v in cavity.items()},
        "voxel_volume_ml": voxel_ml,
    }


def model_vs_expert(case: SunnybrookCase, model_labels: np.ndarray) -> dict:
    """A model's LV cavity volumes against the expert's, on the expert's slices and frames.

    Only the slices contoured in both expert frames count (the expert left basal and apical
    slices out); the model's own ED/ES (frames of its largest/smallest cavity volume on those
    slices, over all frames) are reported beside the expert's.
    """
    if model_labels.shape != case.labels.shape:
        raise ValueError(f"model labels {model_labels.shape} != expert grid {case.labels.shape}")
    ref = expert_lv_volumes(case)
    slices = ref["contoured_slices"]
    voxel_ml = case.image.voxel_volume_ml
    curve = (model_labels[:, :, slices, :] == LV_CAVITY).sum(axis=(0, 1, 2)) * voxel_ml
    edv, esv = float(curve[ref["ED_frame"]]), float(curve[ref["ES_frame"]])
    cavity = {
        t: case.labels[:, :, slices, t] == LV_CAVITY for t in (ref["ED_frame"], ref["ES_frame"])
    }
    dice = {}
    for name, t in (("ED", ref["ED_frame"]), ("ES", ref["ES_frame"])):
        m = model_labels[:, :, slices, t] == LV_CAVITY
        dice[name] = float(2 * (m & cavity[t]).sum() / max(1, m.sum() + cavity[t].sum()))
    return {
        "model_ED_frame": int(np.argmax(curve)),
        "model_ES_frame": int(np.argmin(curve)),
        "model_LVEDV": edv,
        "model_LVESV": esv,
        "model_LVEF": 100.0 * (edv - esv) / edv if edv > 0 else float("nan"),
        "expert_LVEDV": ref["LVEDV"],
        "expert_LVESV": ref["LVESV"],
        "expert_LVEF": ref["LVEF"],
        "LVEDV_diff_ml": edv - ref["LVEDV"],
        "LVESV_diff_ml": esv - ref["LVESV"],
        "dice_lv_cavity_ED": dice["ED"],
        "dice_lv_cavity_ES": dice["ES"],
    }
