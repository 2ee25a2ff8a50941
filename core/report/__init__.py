"""The printed exam report: content from an exam (`content`), laid out as a PDF (`pdf`).

`write_measure_reports` is what `hc-studio measure ... --report OUT.pdf` calls: it groups the
measured frames into exams (DICOM by study, other files by folder) and writes one PDF per exam,
OUT.pdf for the first and OUT-2.pdf, OUT-3.pdf... for the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from ..exam.dating import GA_AT_EXAM, Dating
from ..exam.grouping import group_into_exams
from ..records import MeasurementRecord
from .content import ExamReport, build_exam_report, read_record_pixels
from .pdf import render_exam_pdf, report_paths, write_exam_pdf

__all__ = [
    "ExamReport",
    "build_exam_report",
    "model_details",
    "render_exam_pdf",
    "report_paths",
    "write_exam_pdf",
    "write_measure_reports",
]


def model_details(engine) -> dict[str, str]:
    """What a report says about a `SegmentationEngine`'s model besides its name: the file (its
    name carries the version), how it was trained and when (from the model's metadata)."""
    description = engine.info.description
    return {
        "file": engine.model_path.name,
        "method": description.get("method", ""),
        "trained": description.get("date", ""),
    }


def write_measure_reports(
    records: Iterable[MeasurementRecord],
    out: str | Path,
    operator: str = "",
    model_details: Mapping[str, str] | None = None,
    ga_weeks: float | None = None,
    read_pixels=read_record_pixels,
) -> list[Path]:
    """One report per exam of `records`; returns the files written.

    `ga_weeks` (a GA at the exam date, as `measure --ga-weeks` takes it) is GA by dates of ONE
    patient: it is used only when the frames form a single exam, never spread over several.
    """
    book = group_into_exams(records)
    if not len(book):
        raise ValueError("no frame to report")
    notes: tuple[str, ...] = ()
    for exam in book:
        exam.operator = operator
        if ga_weeks is not None and len(book) == 1:
            exam.dating = Dating(GA_AT_EXAM, ga_days=round(ga_weeks * 7))
    if ga_weeks is not None and len(book) > 1:
        notes = (
            f"The GA given for the run ({ga_weeks:g} weeks) was not applied: the frames form "
            f"{len(book)} exams, and GA by dates belongs to one.",
        )
    paths = report_paths(out, len(book))
    for exam, path in zip(book, paths, strict=True):
        report = build_exam_report(exam, read_pixels, model_details=model_details, notes=notes)
        write_exam_pdf(report, path)
    return paths
