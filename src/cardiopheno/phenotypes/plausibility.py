"""Values that cannot be right become NaN with the reason, for every family alike.

The rules are declared once, in the input contract (``phenotypes:`` of
``cardiopheno/data/input_contract.yaml``): per output, an exclusive minimum (``above``), an
inclusive maximum (``at_most``) or another output it must not exceed (``not_above``), and the
outputs derived from it (``with``) that become NaN with it. They are checked in the order
written; the first that fails names the reason, which :func:`apply_plausibility` records with
``ctx.explain`` (so it reaches the command's JSON ``notes`` and the phenotype table's
``phenotypes_notes``, and the QC reason of a missing value). A rule whose output a run does not
make, or whose value is already NaN, is skipped.

Examples it catches: an ejection fraction at or below 0 % (an end-systolic volume above the
end-diastolic one, or a one-frame map, whose only frame is both ED and ES) or above 100 %, and
an end-diastolic volume of 0 mL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING

from cardiopheno.io.contract import contract

if TYPE_CHECKING:  # the registry calls this module: no import back at run time
    from cardiopheno.phenotypes.registry import Family, PhenotypeSpec, SubjectContext


@cache
def rules() -> dict[str, dict]:
    """Output name -> its rule, in the contract's order."""
    return dict(contract()["phenotypes"])


def _finite(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def rule_failure(
    name: str, rule: Mapping, values: Mapping[str, float], units: Mapping[str, str]
) -> str:
    """Why ``values[name]`` breaks ``rule``, or "" when it keeps it (or cannot be judged)."""
    value = _finite(values.get(name))
    if value is None:
        return ""
    unit = units.get(name, "")
    shown = f"{name} {value:.4g}{' ' + unit if unit else ''}"
    if "above" in rule and not value > rule["above"]:
        return f"{shown} is not above {rule['above']:g}"
    if "at_most" in rule and value > rule["at_most"]:
        return f"{shown} is above {rule['at_most']:g}"
    other = rule.get("not_above")
    limit = _finite(values.get(other)) if other else None
    if limit is not None and value > limit:
        other_unit = units.get(other, "")
        return f"{shown} is above {other} {limit:.4g}{' ' + other_unit if other_unit else ''}"
    return ""


def _one_frame(ctx: SubjectContext, family: Family | None) -> bool:
    """Whether every view the family reads has a single frame (so no end-systole)."""
    if family is None:
        return False
    names = getattr(family.module, "VIEWS", (family.view,))
    views = [v for v in (ctx.view(n) for n in names) if v is not None]
    return bool(views) and all(v.n_frames == 1 for v in views)


def implausible(
    values: Mapping[str, float], specs: Sequence[PhenotypeSpec]
) -> list[tuple[str, list[str]]]:
    """(reason, outputs to make NaN) for each rule ``values`` break, in the contract's order; an
    output made NaN by an earlier rule is not judged again."""
    units = {s.name: s.unit for s in specs}
    current = dict(values)
    out = []
    for name, rule in rules().items():
        if name not in units:
            continue
        reason = rule_failure(name, rule, current, units)
        if reason:
            names = [n for n in (name, *rule.get("with", ())) if n in units]
            current.update(dict.fromkeys(names, math.nan))
            out.append((reason, names))
    return out


def apply_plausibility(ctx: SubjectContext, families: Sequence[Family]) -> None:
    """Make NaN the values of ``ctx.values`` that cannot be right, with the reason in
    ``ctx.reasons`` ("LVESV, LVSV, LVEF, ...: LVEF 0 % is not above 0 (one frame: ...)")."""
    specs = [spec for family in families for spec in family.outputs]
    family_of = {s.name: f for f in families for s in f.outputs}
    for reason, names in implausible(ctx.values, specs):
        if _one_frame(ctx, family_of.get(names[0])):
            reason += " (a one-frame segmentation has no end-systolic frame)"
        ctx.values.update(dict.fromkeys(names, math.nan))
        ctx.explain(names, f"cannot be right: {reason}")
