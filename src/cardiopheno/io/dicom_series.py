"""Which series of a DICOM folder or zip make up a view's cine: the series-name patterns and
stacking tolerances (config section ``inputs.dicom`` for the short axis, the view's own
``dicom_series`` for the others) and the choice among the series found (cardiopheno.io.dicom)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from cardiopheno.io.dicom_headers import DicomConversionError
from cardiopheno.views import VIEWS, view_spec

DEFAULT_SERIES_INCLUDE = (
    r"(?i)^CINE_segmented_SAX_b\d+$",  # UK Biobank field 20209: one series per slice
    r"(?i)(^|[^a-z])sax?([^a-z]|$)",  # "sa" or "sax" as a token: cine_sax, SA cine, sa_retro
    r"(?i)short[ _-]?axis",
)
DEFAULT_SERIES_EXCLUDE = (
    r"(?i)inline[ _]?vf",  # UK Biobank's derived (inline volume function) series
    r"(?i)(^|[^a-z])(lax|[234]ch)([^a-z]|$)|long[ _-]?axis",
    r"(?i)localizer|scout|survey|tagging|shmolli|t1map",
)

# The other views: a folder or zip given for a view holds that view's cine, so only its own
# UK Biobank series names and common spellings are preferred (the view's ``dicom_series``,
# cardiopheno.views), and localizers are left out; the short axis's exclusion of long-axis
# series does not apply.
VIEW_SERIES_EXCLUDE = (r"(?i)localizer|scout|survey|tagging|shmolli|t1map",)


@dataclass(frozen=True)
class DicomOptions:
    """How to find and stack the short-axis cine (config section ``inputs.dicom``)."""

    series_include: tuple[str, ...] = DEFAULT_SERIES_INCLUDE
    series_exclude: tuple[str, ...] = DEFAULT_SERIES_EXCLUDE
    slice_spacing_tolerance_mm: float = 0.5
    orientation_tolerance: float = 1e-3

    def for_view(self, view: str) -> DicomOptions:
        """These options for another view's DICOM (its own series names); the primary view's
        are these options themselves."""
        if view_spec(view).primary:
            return self
        return replace(
            self, series_include=view_series_include()[view], series_exclude=VIEW_SERIES_EXCLUDE
        )

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> DicomOptions:
        cfg = dict(cfg or {})
        return cls(
            series_include=tuple(cfg.get("series_include", DEFAULT_SERIES_INCLUDE)),
            series_exclude=tuple(cfg.get("series_exclude", DEFAULT_SERIES_EXCLUDE)),
            slice_spacing_tolerance_mm=float(cfg.get("slice_spacing_tolerance_mm", 0.5)),
            orientation_tolerance=float(cfg.get("orientation_tolerance", 1e-3)),
        )

    def wants(self, description: str) -> bool:
        """Whether a series of this description qualifies (an include and no exclude pattern)."""
        return matches_any(description, self.series_include) and not matches_any(
            description, self.series_exclude
        )


def view_series_include() -> dict[str, tuple[str, ...]]:
    """Each view's DICOM series names beside the short axis's (``ViewSpec.dicom_series``)."""
    return {name: spec.dicom_series for name, spec in VIEWS.items() if spec.dicom_series}


def matches_any(description: str, patterns: Sequence[str]) -> bool:
    return any(re.search(p, description) for p in patterns)


def select_series(
    descriptions: Mapping[str, str],
    options: DicomOptions,
    manifest_descriptions: Sequence[str] = (),
) -> list[str]:
    """Keys of the series that make up the short-axis cine.

    A series qualifies when its description matches an ``series_include`` pattern and no
    ``series_exclude`` pattern. A lone series qualifies when it has no description (plain scanner
    exports, Sunnybrook). Several qualifying series are stacked together (UK Biobank writes one
    series per slice).
    """
    chosen = [key for key, desc in descriptions.items() if options.wants(desc)]
    if not chosen and len(descriptions) == 1 and not next(iter(descriptions.values())):
        chosen = list(descriptions)
    if not chosen:
        found = sorted({d or "<empty>" for d in descriptions.values()} | set(manifest_descriptions))
        raise DicomConversionError(
            f"no short-axis cine among {len(descriptions)} series (descriptions: "
            f"{', '.join(found)}); adjust inputs.dicom.series_include / series_exclude"
        )
    return chosen
