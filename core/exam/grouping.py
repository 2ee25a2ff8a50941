"""Frames grouped into exams: DICOM by study, other files by folder; the user may regroup.

A DICOM file's study (StudyInstanceUID) and its patient identifiers are read from its header and
kept inside the `Exam` (`Exam.identifiers`): labels shown or exported are "Study 1", "Study 2"...
or the folder's name, so no identifier reaches a CSV or a report unless a caller asks for
`identifiers` explicitly.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..records import MeasurementRecord
from .dating import Dating

FrameKey = tuple[str, int]  # (file, frame_index)

DICOM_STUDY, FOLDER, USER = "dicom-study", "folder", "user"
IDENTIFIER_TAGS = ("StudyInstanceUID", "PatientID", "PatientName", "AccessionNumber")


def frame_key(record: MeasurementRecord) -> FrameKey:
    return (record.file, record.frame_index)


@dataclass(frozen=True)
class StudyHeader:
    """What a DICOM header says about its exam: the study UID, the study date, identifiers."""

    study_uid: str
    study_date: dt.date | None
    identifiers: dict[str, str]


def _dicom_date(text: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(text.strip(), "%Y%m%d").date()
    except ValueError:
        return None


def read_study_header(path: str | Path) -> StudyHeader | None:
    """The study of a DICOM file, or None for a file that is not DICOM, cannot be read, or has
    no StudyInstanceUID (it is then grouped by folder like any other file)."""
    from ..io.dicom import is_dicom

    path = Path(path)
    if not is_dicom(path) and path.suffix.lower() not in (".dcm", ".dicom"):
        return None
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError):
        return None
    uid = str(getattr(dataset, "StudyInstanceUID", "") or "").strip()
    if not uid:
        return None
    identifiers = {tag: str(getattr(dataset, tag, "") or "") for tag in IDENTIFIER_TAGS}
    return StudyHeader(uid, _dicom_date(str(getattr(dataset, "StudyDate", "") or "")), identifiers)


@dataclass
class Exam:
    """One exam: its frames' records, in the order read, and what the user entered for it.

    `key` is stable and identifier-free ("study-1", "folder-2", "exam-3"); `label` is what is
    shown. `identifiers` (DICOM study UID, patient ID and name, accession number) stay here.
    """

    key: str
    label: str
    kind: str
    records: list[MeasurementRecord] = field(default_factory=list)
    exam_date: dt.date | None = None
    dating: Dating | None = None
    operator: str = ""
    identifiers: dict[str, str] = field(default_factory=dict, repr=False)

    def frame_keys(self) -> list[FrameKey]:
        return [frame_key(record) for record in self.records]


class ExamBook:
    """The exams of a session, with the regrouping API.

    Every frame belongs to exactly one exam. Records are replaced (they are immutable) with
    `update_record`; frames move with `move_frame`; `new_exam` makes an empty exam to move
    frames into; `drop_empty` removes exams left without frames.
    """

    def __init__(self, exams: Iterable[Exam] = ()) -> None:
        self.exams: list[Exam] = list(exams)
        self._counter = itertools.count(len(self.exams) + 1)

    def __iter__(self):
        return iter(self.exams)

    def __len__(self) -> int:
        return len(self.exams)

    def exam(self, key: str) -> Exam:
        for exam in self.exams:
            if exam.key == key:
                return exam
        raise KeyError(f"no exam {key!r}")

    def exam_of(self, key: FrameKey) -> Exam:
        for exam in self.exams:
            if key in exam.frame_keys():
                return exam
        raise KeyError(f"frame {key[1]} of {key[0]} is in no exam")

    def new_exam(self, label: str = "") -> Exam:
        number = next(self._counter)
        exam = Exam(key=f"exam-{number}", label=label or f"Exam {number}", kind=USER)
        self.exams.append(exam)
        return exam

    def move_frame(self, key: FrameKey, target_key: str) -> None:
        """Move one frame (its record) into the exam `target_key`."""
        source, target = self.exam_of(key), self.exam(target_key)
        if source is target:
            return
        index = source.frame_keys().index(key)
        target.records.append(source.records.pop(index))

    def update_record(self, record: MeasurementRecord) -> None:
        """Replace the record of the same frame (after an edit or an acceptance)."""
        exam = self.exam_of(frame_key(record))
        exam.records[exam.frame_keys().index(frame_key(record))] = record

    def drop_empty(self) -> None:
        self.exams = [exam for exam in self.exams if exam.records]


def group_into_exams(
    records: Iterable[MeasurementRecord],
    read_study: Callable[[str | Path], StudyHeader | None] = read_study_header,
) -> ExamBook:
    """Group records into exams: DICOM files by StudyInstanceUID (whatever their folder), the
    others by the folder holding the file. Exams come in the order of their first frame; the
    study's date becomes the exam date."""
    exams: dict[tuple[str, str], Exam] = {}
    headers: dict[str, StudyHeader | None] = {}
    studies = folders = 0
    for record in records:
        if record.file not in headers:
            headers[record.file] = read_study(record.file)
        header = headers[record.file]
        if header is not None:
            group = (DICOM_STUDY, header.study_uid)
            if group not in exams:
                studies += 1
                exams[group] = Exam(
                    key=f"study-{studies}",
                    label=f"Study {studies}",
                    kind=DICOM_STUDY,
                    exam_date=header.study_date,
                    identifiers=dict(header.identifiers),
                )
        else:
            # absolute, links kept: the folder the user opened names the exam
            folder = os.path.dirname(os.path.abspath(record.file))
            group = (FOLDER, folder)
            if group not in exams:
                folders += 1
                exams[group] = Exam(
                    key=f"folder-{folders}", label=Path(folder).name or folder, kind=FOLDER
                )
        exams[group].records.append(record)
    return ExamBook(exams.values())


def regroup(book: ExamBook, moves: Mapping[FrameKey, str]) -> ExamBook:
    """`book` with the person's moves applied: each frame of `moves` goes into its exam, made
    (kind "user", label "Exam N" from its key "exam-N") when no such exam exists. Frames no
    longer open are skipped; exams left without frames are dropped."""
    for key, target in moves.items():
        try:
            book.exam_of(key)
        except KeyError:
            continue
        if not any(exam.key == target for exam in book):
            label = target.replace("exam-", "Exam ", 1) if target.startswith("exam-") else target
            book.exams.append(Exam(key=target, label=label, kind=USER))
        book.move_frame(key, target)
    book.drop_empty()
    return book
