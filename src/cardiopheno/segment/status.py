"""The segment stage's status table: one row per subject and view, its columns defined once.

Columns: ``eid``, the view's ``seg_name`` (the label map's path, '' on failure), ``source``
(model or provided), ``ok``, ``reason``, ``seconds``, ``frame_interval_ms``,
``frame_interval_source``, ``tta_dice_<key>`` per label and, for a view with
``ViewSpec.uncertainty`` (the short axis), the key phenotypes' ``<IDP>_sd``
(:mod:`cardiopheno.segment.uncertainty`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pandas as pd

from cardiopheno.io.tables import ColumnSpec, write_table
from cardiopheno.segment.uncertainty import UNCERTAINTY_COLUMNS
from cardiopheno.views import VIEWS, ViewSpec

TTA_KEYS = tuple(VIEWS["sa"].keys.values())  # the short axis's: lv, myo, rv


def status_columns(view: ViewSpec) -> dict[str, ColumnSpec]:
    """Documented float columns of a view's segment table (the short axis adds the phenotype
    uncertainties of :mod:`cardiopheno.segment.uncertainty`)."""
    return {
        "seconds": ColumnSpec("s", "wall time spent on this subject (read, segment, write)"),
        "frame_interval_ms": ColumnSpec(
            "ms",
            "frame interval from the NIfTI header (pixdim[4]) that the phenotypes use; NaN when "
            "unknown. frame_interval_source says whether its unit was read from the header "
            "('header sec|msec|usec') or inferred ('inferred sec|msec', see io.nifti.frame_interval)",
        ),
        **{
            f"tta_dice_{view.keys[c]}": ColumnSpec(
                "",
                f"mean Dice of the {view.labels[c]} between the prediction and predictions on "
                "flipped input at the frames of largest and smallest "
                f"{view.labels[view.classes[0]]} (test-time augmentation); NaN when TTA is off "
                "or not run",
            )
            for c in view.classes
        },
        **(UNCERTAINTY_COLUMNS if view.uncertainty else {}),
    }


STATUS_COLUMNS = status_columns(VIEWS["sa"])


def tta_columns(view: ViewSpec) -> list[str]:
    return [f"tta_dice_{view.keys[c]}" for c in view.classes]


def uncertainty_columns(view: ViewSpec) -> list[str]:
    return list(UNCERTAINTY_COLUMNS) if view.uncertainty else []


def column_order(view: ViewSpec) -> list[str]:
    """Every column of ``view``'s status table, in order."""
    return [
        "eid", view.seg_name, "source", "ok", "reason", "seconds", "frame_interval_ms",
        "frame_interval_source", *tta_columns(view), *uncertainty_columns(view),
    ]  # fmt: skip


def new_record(view: ViewSpec, eid: str, **values) -> dict:
    """A subject's row: not segmented yet (no label map, NaN measurements), then ``values``."""
    nan = float("nan")
    record = {
        "eid": eid, view.seg_name: "", "source": "model", "ok": False, "reason": "",
        "seconds": 0.0, "frame_interval_ms": nan, "frame_interval_source": "none",
        **dict.fromkeys(tta_columns(view), nan), **dict.fromkeys(uncertainty_columns(view), nan),
    }  # fmt: skip
    record.update(values)
    return record


def write_status(
    records: Sequence[dict],
    path: str | os.PathLike,
    view: ViewSpec,
    config: Mapping | None = None,
    model_sha256: str = "",
    extra: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The status table of ``records`` (rows of :func:`new_record`), written to ``path``."""
    table = pd.DataFrame(list(records), columns=column_order(view))
    table["ok"] = table["ok"].astype(bool)
    table["seconds"] = table["seconds"].astype(float)
    table["frame_interval_ms"] = table["frame_interval_ms"].astype(float)
    write_table(
        table, path, status_columns(view), config=config, model_sha256=model_sha256, extra=extra
    )
    return table
