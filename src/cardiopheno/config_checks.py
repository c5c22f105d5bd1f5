"""Config values a JSON schema cannot judge alone, checked before any job runs (common.smk).

The schemas check types and shapes; these checks need two values at once or the code's own
vocabulary: a QC range whose minimum is above its maximum, an IDP that no enabled phenotype family
produces, an end of follow-up that is not a calendar date. One :class:`ConfigError` lists every
problem, each naming its key.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from cardiopheno.errors import ProblemsError
from cardiopheno.phenotypes.registry import output_specs, resolve_families

#: Config keys that name IDPs (columns of phenotypes.parquet).
IDP_KEYS = (
    ("association", "idps"),
    ("phewas", "idps"),
    ("survival", "idps"),
    ("figures", "idps"),
    ("figures", "km_idps"),
    ("qc", "phenotype", "outlier_idps"),
)


class ConfigError(ProblemsError):
    """A config with problems; ``problems`` lists each one, naming its key."""

    def __init__(self, problems: list[str]):
        super().__init__("config", problems)


def _get(config: Mapping, keys: tuple[str, ...]):
    for key in keys:
        if not isinstance(config, Mapping):
            return None
        config = config.get(key)
    return config


def inverted_ranges(section, key: str) -> list[str]:
    """``[min, max]`` pairs under ``section`` (nested, named ``key.sub...``) with min > max."""
    out = []
    if isinstance(section, Mapping):
        for name, value in section.items():
            out += inverted_ranges(value, f"{key}.{name}")
        lo, hi = section.get("min_in_plane"), section.get("max_in_plane")
        if isinstance(lo, int | float) and isinstance(hi, int | float) and lo > hi:
            out.append(f"{key}.min_in_plane ({lo}) is above {key}.max_in_plane ({hi})")
    elif (
        isinstance(section, list | tuple)
        and len(section) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in section)
        and section[0] > section[1]
    ):
        out.append(f"{key}: minimum {section[0]} is above maximum {section[1]}")
    return out


def unknown_idps(config: Mapping) -> list[str]:
    """IDP names in the config that no enabled phenotype family (``phenotypes.families``) makes."""
    families = (config.get("phenotypes") or {}).get("families")
    if not families:
        return []
    known = {s.name for s in output_specs(resolve_families(families))}
    out = []
    for keys in IDP_KEYS:
        names = _get(config, keys) or []
        absent = [n for n in names if n not in known]
        if absent:
            out.append(
                f"{'.'.join(keys)}: {', '.join(absent)} not made by the enabled phenotype "
                f"families ({', '.join(families)})"
            )
    return out


def bad_dates(config: Mapping) -> list[str]:
    """``survival.end_of_followup`` when set but not a real calendar date (YYYY-MM-DD)."""
    value = (config.get("survival") or {}).get("end_of_followup")
    if value is None:
        return []
    try:
        pd.Timestamp(str(value))
    except ValueError:
        return [f"survival.end_of_followup: {value!r} is not a date (YYYY-MM-DD)"]
    return []


def check_config(config: Mapping) -> None:
    """Raise :class:`ConfigError` listing every problem found by the checks above."""
    problems = [
        *inverted_ranges(config.get("qc") or {}, "qc"),
        *unknown_idps(config),
        *bad_dates(config),
    ]
    if problems:
        raise ConfigError(problems)
