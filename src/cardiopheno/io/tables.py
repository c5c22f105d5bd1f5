"""Parquet tables with the metadata every cardiopheno table carries (docs/data-contracts.md).

Float columns carry Arrow field metadata ``unit`` and ``description``; the file carries the package
version, the config hash and the segmentation model's sha256, so a table says what made it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import cardiopheno
from cardiopheno.io.atomic import atomic_path
from cardiopheno.io.eids import canonical_eids


@dataclass(frozen=True)
class ColumnSpec:
    """What a column means: its unit ("" when dimensionless) and a one-line description."""

    unit: str
    description: str


def config_hash(config: Mapping) -> str:
    """A short, stable hash of a config mapping (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_sha256(path: str | os.PathLike | None) -> str:
    """sha256 of a file, or "" when there is no file (for example segmentations a cohort brings)."""
    if not path or not Path(path).is_file():
        return ""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_table(
    df: pd.DataFrame,
    path: str | os.PathLike,
    columns: Mapping[str, ColumnSpec] | None = None,
    config: Mapping | None = None,
    model_sha256: str = "",
    extra: Mapping[str, str] | None = None,
) -> None:
    """Write ``df`` atomically as Parquet with column and file metadata.

    Every float column must be described in ``columns``: an undocumented measurement is a bug.
    """
    columns = dict(columns or {})
    if "eid" in df.columns:
        df = df.assign(eid=df["eid"].astype(str))
    table = pa.Table.from_pandas(df, preserve_index=False)
    missing = [
        f.name for f in table.schema if pa.types.is_floating(f.type) and f.name not in columns
    ]
    if missing:
        raise ValueError(f"{path}: float columns without unit/description: {missing}")
    fields = []
    for field in table.schema:
        spec = columns.get(field.name)
        if spec is not None:
            field = field.with_metadata({"unit": spec.unit, "description": spec.description})
        fields.append(field)
    meta = dict(table.schema.metadata or {})
    meta.update(
        {
            b"cardiopheno_version": cardiopheno.__version__.encode(),
            b"config_hash": (config_hash(config) if config is not None else "").encode(),
            b"model_sha256": model_sha256.encode(),
        }
    )
    for key, value in (extra or {}).items():
        meta[key.encode()] = str(value).encode()
    table = pa.Table.from_arrays(table.columns, schema=pa.schema(fields, metadata=meta))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a Parquet table with ``eid`` as canonical text (:func:`~cardiopheno.io.eids.canonical_eids`:
    stripped, ``1000001.0`` -> ``"1000001"``, missing -> ``""``)."""
    df = pd.read_parquet(path)
    if "eid" in df.columns:
        df["eid"] = canonical_eids(df["eid"])
    return df


def column_specs(path: str | os.PathLike) -> dict[str, ColumnSpec]:
    """The unit and description stored for each documented column of a Parquet file."""
    schema = pq.read_schema(path)
    out = {}
    for field in schema:
        md = field.metadata or {}
        if b"unit" in md:
            out[field.name] = ColumnSpec(md[b"unit"].decode(), md.get(b"description", b"").decode())
    return out


def file_metadata(path: str | os.PathLike) -> dict[str, str]:
    """File-level metadata (version, config hash, model sha256, ...) minus pandas' own entry."""
    md = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in md.items() if k != b"pandas"}


def read_any(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV or Parquet table (by extension) with ``eid`` as canonical text (see
    :func:`read_table`)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return read_table(path)
    df = pd.read_csv(path, dtype={"eid": str})
    if "eid" in df.columns:
        df["eid"] = canonical_eids(df["eid"])
    return df
