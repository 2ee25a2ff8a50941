"""What an exam's values say: GA by each equation, GA by dates, their discrepancy, the centile.

Everything here is per exam: the exam's own GA by dates drives its centiles and its discrepancy,
so frames of another patient are never read against it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..gestational_age import (
    HADLOCK_METHOD,
    INTERGROWTH_GA_METHOD,
    INTERGROWTH_HC_FOR_GA,
    GestationalAge,
    ga_hadlock,
    ga_intergrowth,
    hc_centile,
    hc_z_score,
)
from .dating import (
    ACOG_2017_MARGINS,
    EXTREME_Z,
    Discrepancy,
    DiscrepancyMargins,
    centile_text,
    ga_discrepancy,
)
from .grouping import Exam
from .values import ParameterValue

# The full reference of each GA equation, as printed in the report.
EQUATION_REFERENCES = {
    HADLOCK_METHOD: "Hadlock FP et al. Radiology 1984;152:497-501 (HC)",
    INTERGROWTH_GA_METHOD: (
        "Papageorghiou AT et al. Ultrasound Obstet Gynecol 2016;48:719-726 (HC)"
    ),
}
CENTILE_REFERENCE = "Papageorghiou AT et al. Lancet 2014;384:869-879 (INTERGROWTH-21st HC-for-GA)"


@dataclass(frozen=True)
class Centile:
    """An HC centile for GA by dates: the number, the z-score, and how it must be shown."""

    centile: float | None
    z_score: float | None
    text: str
    note: str

    @property
    def extreme(self) -> bool:
        return self.z_score is not None and abs(self.z_score) > EXTREME_Z


def hc_centile_for(hc_mm: float | None, ga_days: int | None) -> Centile:
    """The centile of one HC at GA by dates (days); empty with the reason when not possible."""
    if hc_mm is None:
        return Centile(None, None, "", "no HC")
    if ga_days is None:
        return Centile(None, None, "", "no GA by dates")
    z, note = hc_z_score(hc_mm, ga_days / 7)
    centile = hc_centile(hc_mm, ga_days / 7)[0]
    return Centile(centile, z, centile_text(centile, z), note)


@dataclass(frozen=True)
class ExamAssessment:
    """GA by dates (days, or None with `dates_note`), GA by each equation from the exam HC, the
    discrepancy of GA by Hadlock against GA by dates (None without both), and the exam HC's
    centile for GA by dates."""

    ga_dates_days: int | None
    dates_note: str
    ga_by_equation: tuple[GestationalAge, ...]
    discrepancy: Discrepancy | None
    centile: Centile
    biometry_method: str = ""  # the equation the discrepancy was computed with


def assess_exam(
    exam: Exam,
    values: dict[str, ParameterValue],
    margins: DiscrepancyMargins = ACOG_2017_MARGINS,
) -> ExamAssessment:
    """Assess one exam from its values (`exam_values`) and its own dating and date."""
    if exam.dating is None:
        ga_dates, dates_note = None, "GA by dates not entered for this exam"
    else:
        ga_dates, dates_note = exam.dating.ga_days_at(exam.exam_date)
    hc = values["hc"].value if "hc" in values else None
    estimates = (ga_hadlock(hc), ga_intergrowth(hc)) if hc is not None else ()
    discrepancy, method = None, ""
    if ga_dates is not None:
        # Hadlock covers the whole pregnancy; INTERGROWTH-21st only 14+0 to 25+6 weeks.
        biometry = next((ga for ga in estimates if ga.weeks is not None), None)
        if biometry is not None:
            discrepancy = ga_discrepancy(ga_dates, biometry.weeks, margins)  # type: ignore[arg-type]
            method = biometry.method
    return ExamAssessment(
        ga_dates_days=ga_dates,
        dates_note=dates_note,
        ga_by_equation=tuple(estimates),
        discrepancy=discrepancy,
        centile=hc_centile_for(hc, ga_dates),
        biometry_method=method,
    )


__all__ = [
    "CENTILE_REFERENCE",
    "EQUATION_REFERENCES",
    "INTERGROWTH_HC_FOR_GA",
    "Centile",
    "ExamAssessment",
    "assess_exam",
    "hc_centile_for",
]
