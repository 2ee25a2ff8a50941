"""Which frame belongs to which exam, as CSV; patient identifiers only when asked for.

Columns `EXAM_COLUMNS`, plus `IDENTIFIER_COLUMNS` (DICOM StudyInstanceUID, PatientID, PatientName,
AccessionNumber) only with `include_identifiers=True`. Written atomically; text cells are
neutralised against formula injection like the correction log's.
"""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_write
from ..csv_safety import SafeDictWriter
from .grouping import IDENTIFIER_TAGS, ExamBook

EXAM_COLUMNS: tuple[str, ...] = (
    "exam",
    "exam_label",
    "exam_kind",
    "exam_date",
    "dating",
    "file",
    "frame_index",
)
IDENTIFIER_COLUMNS: tuple[str, ...] = IDENTIFIER_TAGS


def write_exam_csv(book: ExamBook, path: str | Path, include_identifiers: bool = False) -> int:
    """One row per frame with its exam; returns the number of rows."""
    columns = list(EXAM_COLUMNS) + (list(IDENTIFIER_COLUMNS) if include_identifiers else [])
    rows = 0
    with atomic_write(path, newline="", encoding="utf-8") as handle:
        writer = SafeDictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for exam in book:
            for record in exam.records:
                row = {
                    "exam": exam.key,
                    "exam_label": exam.label,
                    "exam_kind": exam.kind,
                    "exam_date": exam.exam_date.isoformat() if exam.exam_date else "",
                    "dating": exam.dating.describe() if exam.dating else "",
                    "file": record.file,
                    "frame_index": str(record.frame_index),
                }
                if include_identifiers:
                    row.update({tag: exam.identifiers.get(tag, "") for tag in IDENTIFIER_COLUMNS})
                writer.writerow(row)
                rows += 1
    return rows
