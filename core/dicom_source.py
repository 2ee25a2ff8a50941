"""Where measured frames came from, for DICOM export: the study and patient of a DICOM source, the
image a measurement refers to, and the exams (one per DICOM study, else one per folder).

A frame that did not come from DICOM (PNG, video...) has no patient: its exam gets a study UID
made from its folder's path (the same folder always gives the same UID, so an export made again
replaces its earlier file) and empty patient fields. A DICOM file without a Study, Series or SOP
Instance UID cannot be referenced either and is treated like a non-DICOM frame, with a note.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .io.dicom import is_dicom
from .records import MeasurementRecord

UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's root, for UIDs made by HC Studio


@dataclass(frozen=True)
class StudyIdentity:
    """Patient and study identifiers an SR must carry to be filed with its source in PACS."""

    study_instance_uid: str
    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_date: str = ""
    study_time: str = ""
    accession_number: str = ""
    study_id: str = ""
    referring_physician_name: str = ""
    from_dicom: bool = False


@dataclass(frozen=True)
class SourceImage:
    """A DICOM image a measurement can reference (frame_number from 1, None if single-frame)."""

    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    frame_number: int | None = None


@dataclass(frozen=True)
class DicomSource:
    """What the header of one DICOM file says about its study and image."""

    identity: StudyIdentity
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    n_frames: int

    def image(self, frame_index: int) -> SourceImage:
        frame_number = frame_index + 1 if self.n_frames > 1 else None
        return SourceImage(
            self.sop_class_uid, self.sop_instance_uid, self.series_instance_uid, frame_number
        )


@dataclass
class Exam:
    """Records of one study (or one folder of non-DICOM frames) and their sources."""

    identity: StudyIdentity
    label: str  # the study UID, or the folder name
    records: list[MeasurementRecord] = field(default_factory=list)
    sources: dict[str, DicomSource] = field(default_factory=dict)  # file -> its DICOM header
    notes: list[str] = field(default_factory=list)

    def image_of(self, record: MeasurementRecord) -> SourceImage | None:
        source = self.sources.get(record.file)
        return None if source is None else source.image(record.frame_index)


def _text(dataset, keyword: str) -> str:
    value = dataset.get(keyword, "")
    return "" if value is None else str(value)


def read_dicom_source(path: str | Path) -> DicomSource | str | None:
    """The study and image of a DICOM file; None when it is not DICOM; a sentence when it is
    DICOM but cannot be referenced (unreadable, or missing UIDs)."""
    path = Path(path)
    if not (path.suffix.lower() in (".dcm", ".dicom") or is_dicom(path)):
        return None
    import pydicom

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as error:  # pydicom raises many types for damaged files
        return f"{path}: DICOM header not read ({error})"
    missing = [
        keyword
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
        if not _text(dataset, keyword)
    ]
    if missing:
        return f"{path}: no {', '.join(missing)}; exported as a non-DICOM frame"
    identity = StudyIdentity(
        study_instance_uid=_text(dataset, "StudyInstanceUID"),
        patient_id=_text(dataset, "PatientID"),
        patient_name=_text(dataset, "PatientName"),
        patient_birth_date=_text(dataset, "PatientBirthDate"),
        patient_sex=_text(dataset, "PatientSex"),
        study_date=_text(dataset, "StudyDate"),
        study_time=_text(dataset, "StudyTime"),
        accession_number=_text(dataset, "AccessionNumber"),
        study_id=_text(dataset, "StudyID"),
        referring_physician_name=_text(dataset, "ReferringPhysicianName"),
        from_dicom=True,
    )
    try:
        n_frames = max(1, int(dataset.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        n_frames = 1
    return DicomSource(
        identity,
        _text(dataset, "SOPClassUID"),
        _text(dataset, "SOPInstanceUID"),
        _text(dataset, "SeriesInstanceUID"),
        n_frames,
    )


def folder_study_uid(folder: str | Path) -> str:
    """A study UID for a folder of non-DICOM frames, the same for the same folder path."""
    from pydicom.uid import generate_uid

    return str(generate_uid(UID_ROOT, entropy_srcs=["hc-studio folder", str(Path(folder))]))


def group_exams(records: Iterable[MeasurementRecord]) -> list[Exam]:
    """Exams of `records`: one per DICOM study, one per folder of other frames; in the order
    their first record comes. Each file's header is read once."""
    exams: dict[str, Exam] = {}
    headers: dict[str, DicomSource | str | None] = {}
    for record in records:
        if record.file not in headers:
            headers[record.file] = read_dicom_source(record.file)
        source = headers[record.file]
        if isinstance(source, DicomSource):
            key = "study:" + source.identity.study_instance_uid
            if key not in exams:
                uid = source.identity.study_instance_uid
                exams[key] = Exam(source.identity, uid)
            exams[key].sources[record.file] = source
        else:
            folder = Path(record.file).resolve().parent
            key = f"folder:{folder}"
            if key not in exams:
                identity = StudyIdentity(folder_study_uid(folder))
                exams[key] = Exam(identity, folder.name or "frames")
            if isinstance(source, str) and source not in exams[key].notes:
                exams[key].notes.append(source)
        exams[key].records.append(record)
    return list(exams.values())
