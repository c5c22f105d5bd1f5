"""Where a DICOM cine comes from: a folder or a zip (as UK Biobank delivers it), listed as
(name, read-bytes) pairs, with its optional UK Biobank manifest (cardiopheno.io.dicom)."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from cardiopheno.io.dicom_headers import DicomConversionError

MANIFEST_NAMES = ("manifest.csv", "manifest.cvs")  # UK Biobank misspells it in some zips


def _normalise_column(name: str) -> str:
    name = re.sub(r"[^a-z0-9]", "", str(name).lower())
    return {"seriesdiscription": "seriesdescription", "aet": "aetitle"}.get(name, name)


def read_zip_manifest(text: str) -> pd.DataFrame:
    """Parse a UK Biobank zip manifest (``manifest.csv`` or the misspelt ``manifest.cvs``).

    Column names are normalised (lower case, letters and digits only; ``series discription`` ->
    ``seriesdescription``). Dates written as ``Aug 30, 2015`` carry an unquoted comma that breaks
    CSV parsing; a row with more fields than the header has its surplus folded back into the
    ``date`` field (or, without one, into the last column).
    """
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return pd.DataFrame(columns=["filename", "seriesdescription"])
    header = [_normalise_column(c) for c in rows[0]]
    fixed = []
    for row in rows[1:]:
        extra = len(row) - len(header)
        if extra > 0:
            at = header.index("date") if "date" in header else len(header) - 1
            row = [*row[:at], ",".join(row[at : at + extra + 1]), *row[at + extra + 1 :]]
        fixed.append((row + [""] * len(header))[: len(header)])
    return pd.DataFrame(fixed, columns=header).apply(lambda s: s.str.strip())


class DicomSource:
    """The files of one input (folder or zip) as (name, read-bytes) pairs, plus its manifest.

    A context manager: entering lists the files (a zip stays open until exit); a path that is
    neither a folder nor a zip raises DicomConversionError.
    """

    def __init__(self, path: Path):
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self.files: list[tuple[str, Callable[[], bytes]]] = []
        self.manifest: pd.DataFrame | None = None

    def __enter__(self) -> DicomSource:
        if self.path.is_dir():
            manifest_text = self._list_folder()
        elif zipfile.is_zipfile(self.path):
            manifest_text = self._list_zip()
        elif self.path.exists():
            raise DicomConversionError(f"{self.path}: neither a folder nor a zip file")
        else:
            raise DicomConversionError(f"{self.path}: not found")
        if manifest_text is not None:
            self.manifest = read_zip_manifest(manifest_text)
        return self

    def __exit__(self, *exc) -> None:
        if self._zip is not None:
            self._zip.close()

    def _list_folder(self) -> str | None:
        """Every file under the folder, in sorted path order; the manifest's text if any."""
        manifest_text = None
        for p in sorted(self.path.rglob("*")):
            if not p.is_file():
                continue
            name = p.relative_to(self.path).as_posix()
            if p.name.lower() in MANIFEST_NAMES:
                manifest_text = p.read_text(errors="replace")
            else:
                self.files.append((name, p.read_bytes))
        return manifest_text

    def _list_zip(self) -> str | None:
        """Every file of the zip, in its own order; the manifest's text if any."""
        manifest_text = None
        self._zip = zipfile.ZipFile(self.path)
        for info in self._zip.infolist():
            if info.is_dir():
                continue
            base = info.filename.rsplit("/", 1)[-1]
            if base.lower() in MANIFEST_NAMES:
                manifest_text = self._zip.read(info).decode(errors="replace")
            else:
                self.files.append((info.filename, _zip_reader(self._zip, info.filename)))
        return manifest_text


def _zip_reader(zf: zipfile.ZipFile, name: str) -> Callable[[], bytes]:
    return lambda: zf.read(name)
