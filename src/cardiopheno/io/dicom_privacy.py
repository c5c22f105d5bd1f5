"""Keeping a DICOM reader anonymous: the identifying header keywords and zip manifest columns, a
scrubber that removes their values from any text, and a pydicom reading mode that lets no warning
echo a header value (cardiopheno.io.dicom).

No patient-identifying header value (name, ID, birth date, accession number, ...) is kept, logged
or written: the cohort ``eid`` is the only key, and every error message is scrubbed of the
identifying values seen in the headers and the zip manifest before it leaves the DICOM reader.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator

import pydicom
import pydicom.config

# Header keywords whose values identify a person; never copied anywhere, scrubbed from messages.
IDENTIFYING_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientBirthTime",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "IssuerOfPatientID",
    "AccessionNumber",
    "StudyID",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "InstitutionName",
    "InstitutionAddress",
)
# Zip manifest columns (UK Biobank: filename, patientid, studyid, aetitle, date, time, ...) that
# identify a person or a visit; scrubbed like the header values above.
IDENTIFYING_MANIFEST_COLUMNS = ("patientid", "studyid", "accessionnumber", "patientname")


class Scrubber:
    """Collects identifying values and removes them from any text (messages, reasons)."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add_dataset(self, ds: pydicom.Dataset) -> None:
        for keyword in IDENTIFYING_KEYWORDS:
            elem = ds.get(keyword)
            if elem is None:
                continue
            values = (
                elem if isinstance(elem, list | tuple | pydicom.multival.MultiValue) else [elem]
            )
            for v in values:
                self.add(str(v))
                if keyword.endswith("Name"):  # PN components: "Family^Given"
                    for part in re.split(r"[\^=]", str(v)):
                        self.add(part)

    def add(self, value: str) -> None:
        value = str(value).strip()
        if len(value) >= 3 and value.lower() not in {"nan", "none", "anonymous", "anon"}:
            self.values.add(value)

    def __call__(self, text: str, keep: str = "") -> str:
        """``text`` without identifying values; ``keep`` (the eid, the cohort's own key) stays."""
        for value in sorted(self.values - {keep}, key=len, reverse=True):
            text = re.sub(re.escape(value), "<redacted>", text, flags=re.IGNORECASE)
        return text


@contextlib.contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Read tolerantly (invalid UI/DS values pass) and let no warning echo a header value."""
    settings = pydicom.config.settings
    old = settings.reading_validation_mode
    settings.reading_validation_mode = pydicom.config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        settings.reading_validation_mode = old
