"""The cine views a subject may have, each described once (docs/views.md).

A view is data: the manifest column of its image, the provided-segmentation columns it accepts
(ukbb_cardiac conventions) and how to map them onto its labels, its label map, the shape its cine
must have, the checkpoint of its network and which cavities post-processing fills. Conversion,
segmentation, QC and batching iterate over :data:`VIEWS`; a new view is an entry here, a model
and a phenotype family.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ViewSpec:
    name: str  # manifest column of the image, and the wildcard value of its rules
    title: str
    labels: dict[int, str]  # label value -> structure, in the view's own convention
    keys: dict[int, str]  # label value -> short key (column suffixes such as tta_dice_<key>)
    seg_name: str  # file stem and segment-table column of the view's label map
    single_slice: bool  # a cine of one slice (X x Y x 1 x T) rather than a stack
    checkpoint: str  # file name under cardiopheno/models
    fill_holes: tuple[int, ...]  # labels whose in-slice holes are filled after segmentation
    # provided-segmentation manifest columns -> lookup table onto this view's labels
    provided: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # network grid of a newly trained model (PreprocessConfig fields; stored in the checkpoint)
    preprocess: dict = field(default_factory=dict)
    # whether the labels survive flips and large rotations of the image: true for the heart's
    # chambers (told apart by their shapes and neighbours), false for the aorta, whose ascending
    # and descending parts are told apart by where they lie in the chest (training then rotates
    # by at most 15 degrees without flips, and inference uses no flipped copies)
    symmetric: bool = True
    # a single-slice view turned by its affine into one in-plane orientation before the network
    # (segment.orientation): training then mirrors along the first axis only (affines whose left
    # and right are swapped, as some exports write) and rotates by at most 45 degrees, and
    # inference's flipped copies are mirror images along that axis
    canonical: bool = False
    # series names (regular expressions) that mark this view's cine in a DICOM folder or zip
    # given for it (UK Biobank's names first, then common spellings; io.dicom_series); the short
    # axis's are config inputs.dicom
    dicom_series: tuple[str, ...] = ()
    # the view every subject has (the manifest's required column): its model is the config's
    # segmentation.checkpoint (the others': segmentation.checkpoints.<view>), and a DICOM
    # conversion table's row status is its own
    primary: bool = False
    # its labels follow an endocardial convention (segment.convention: trabeculae and papillary
    # muscles in the cavity or not)
    endocardial_convention: bool = False
    # the segment table carries the key phenotypes' uncertainty over the passes (<IDP>_sd,
    # segment.uncertainty)
    uncertainty: bool = False

    @property
    def classes(self) -> tuple[int, ...]:
        return tuple(sorted(self.labels))

    @property
    def n_classes(self) -> int:
        """Network output channels: background plus every label."""
        return len(self.labels) + 1

    @property
    def file_suffix(self) -> str:
        """The view's tail in file names that leave the primary view unnamed (the synthetic
        cohort's ``truth/labels/<eid><suffix>.nii.gz``, the training cache
        ``synthetic<suffix>.npz``): "" for the primary view, ``_<name>`` for the others."""
        return "" if self.primary else f"_{self.name}"

    @property
    def default_checkpoint(self) -> Path:
        return Path(str(files("cardiopheno") / "models" / self.checkpoint))

    def map_provided(self, column: str, labels: np.ndarray) -> np.ndarray:
        """A provided label map in ``column``'s convention, in this view's labels."""
        lut = np.asarray(self.provided[column], dtype=np.uint8)
        if labels.size and int(labels.max()) >= len(lut):
            raise ValueError(
                f"{column}: label {int(labels.max())} is not in its convention (0..{len(lut) - 1})"
            )
        return lut[labels]


# Single-slice views are segmented whole (192 x 192 pixels of 1.8 mm cover a UK Biobank
# long-axis or aortic field of view): one slice per frame costs little, so no heart crop.
WHOLE_FIELD = {"pixel_mm": 1.8, "roi": 192, "crop": 192}

VIEWS: dict[str, ViewSpec] = {
    v.name: v
    for v in (
        ViewSpec(
            "sa",
            "short-axis stack",
            {1: "LV cavity", 2: "LV myocardium", 3: "RV cavity"},
            {1: "lv", 2: "myo", 3: "rv"},
            "seg_sa",
            False,
            "segment_sa_unet.pt",
            (1, 3),
            {"seg_sa": (0, 1, 2, 3)},
            # inference keeps finer stacks (ACDC's 1.2-1.9 mm) on their own grid down to 1.4 mm =
            # 1.8 / 1.3, the largest heart scale of the training augmentation
            # (transforms.target_pixel); training caches stay at 1.8 mm (train_from_sources)
            preprocess={"finest_pixel_mm": 1.4},
            primary=True,
            endocardial_convention=True,
            uncertainty=True,
        ),
        ViewSpec(
            "la_2ch",
            "long-axis 2-chamber",
            {1: "LA"},
            {1: "la"},
            "seg_la_2ch",
            True,
            "segment_la_2ch_unet.pt",
            (1,),
            {"seg_la_2ch": (0, 1)},
            WHOLE_FIELD,
            canonical=True,
            dicom_series=(
                r"(?i)LAX_2Ch",  # UK Biobank field 20208
                r"(?i)(^|[^a-z0-9])2[ _-]?ch([^a-z]|$)",
                r"(?i)two[ _-]?chamber",
            ),
        ),
        ViewSpec(
            "la_4ch",
            "long-axis 4-chamber",
            {1: "LV cavity", 2: "LV myocardium", 3: "RV cavity", 4: "LA", 5: "RA"},
            {1: "lv", 2: "myo", 3: "rv", 4: "la", 5: "ra"},
            "seg4_la_4ch",
            True,
            "segment_la_4ch_unet.pt",
            (1, 3, 4, 5),
            # seg4_la_4ch is this view's own convention; seg_la_4ch (1 LA, 2 RA) has atria only
            {"seg4_la_4ch": (0, 1, 2, 3, 4, 5), "seg_la_4ch": (0, 4, 5)},
            WHOLE_FIELD,
            canonical=True,
            dicom_series=(
                r"(?i)LAX_4Ch",  # UK Biobank field 20208
                r"(?i)(^|[^a-z0-9])4[ _-]?ch([^a-z]|$)",
                r"(?i)four[ _-]?chamber",
            ),
        ),
        ViewSpec(
            "ao",
            "transverse aorta",
            {1: "ascending aorta", 2: "descending aorta"},
            {1: "aao", 2: "dao"},
            "seg_ao",
            True,
            "segment_ao_unet.pt",
            (1, 2),
            {"seg_ao": (0, 1, 2)},
            WHOLE_FIELD,
            symmetric=False,
            # UK Biobank field 20210
            dicom_series=(r"(?i)Ao_dist", r"(?i)aort", r"(?i)(^|[^a-z])ao([^a-z]|$)"),
        ),
    )
}
EXTRA_VIEWS = tuple(v for v in VIEWS if v != "sa")  # the views beside the short axis


def view_spec(name: str) -> ViewSpec:
    try:
        return VIEWS[name]
    except KeyError:
        raise ValueError(f"unknown view {name!r} (known: {', '.join(VIEWS)})") from None


def provided_columns() -> tuple[str, ...]:
    """Every provided-segmentation column a manifest may carry."""
    return tuple(c for v in VIEWS.values() for c in v.provided)
