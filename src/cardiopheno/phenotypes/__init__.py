"""Imaging-derived phenotypes: a registry of families, one module per family (see registry.py)."""

from cardiopheno.phenotypes.registry import (
    Family,
    PhenotypeError,
    PhenotypeSpec,
    SubjectContext,
    compute_phenotypes,
    context_from_files,
    discover_families,
    output_specs,
    resolve_families,
)

__all__ = [
    "Family",
    "PhenotypeError",
    "PhenotypeSpec",
    "SubjectContext",
    "compute_phenotypes",
    "context_from_files",
    "discover_families",
    "output_specs",
    "resolve_families",
]
