"""Exams: frames grouped per patient visit, GA by dates per exam, exam values from several
measurements, their assessment, and the correction log. No Qt: the app shows what this computes."""

from .assessment import ExamAssessment, assess_exam, hc_centile_for
from .correction_log import (
    CorrectionEntry,
    read_correction_log,
    summarise,
    write_correction_log,
)
from .dating import ACOG_2017_MARGINS, Dating, DiscrepancyMargins, centile_text, ga_discrepancy
from .exam_csv import write_exam_csv
from .grouping import Exam, ExamBook, FrameKey, frame_key, group_into_exams, read_study_header
from .values import DEFAULT_LIMIT, ParameterValue, choose_frames, exam_values

__all__ = [
    "ACOG_2017_MARGINS",
    "DEFAULT_LIMIT",
    "CorrectionEntry",
    "Dating",
    "DiscrepancyMargins",
    "Exam",
    "ExamAssessment",
    "ExamBook",
    "FrameKey",
    "ParameterValue",
    "assess_exam",
    "centile_text",
    "choose_frames",
    "exam_values",
    "frame_key",
    "ga_discrepancy",
    "group_into_exams",
    "hc_centile_for",
    "read_correction_log",
    "read_study_header",
    "summarise",
    "write_correction_log",
    "write_exam_csv",
]
