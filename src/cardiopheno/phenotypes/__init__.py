"""Imaging-derived phenotypes: a registry of families, one module per family (see registry.py)."""

from cardiopheno.phenotypes.registry import (
    Family,
    PhenotypeError,
    PhenotypeSpec,
    SubjectContext,
    ViewData,
    compute_phenotypes,
    context_from_files,
    discover_families,
    output_specs,
    reasons_text,
    resolve_families,
    view_from_files,
)

__all__ = [
    "Family",
    "PhenotypeError",
    "PhenotypeSpec",
    "SubjectContext",
    "ViewData",
    "compute_phenotypes",
    "context_from_files",
    "discover_families",
    "output_specs",
    "reasons_text",
    "resolve_families",
    "view_from_files",
]
