"""GA by dates for one exam, its discrepancy with GA by biometry, and how centiles are worded.

GA by dates is entered per exam in one of three forms and turned into GA at the exam date:
LMP (first day of the last menstrual period): GA = exam date - LMP; EDD (estimated date of
delivery, 280 days after the LMP by Naegele's rule): GA = 280 days - (EDD - exam date); or the GA
itself at the exam date (from an earlier dating scan).

Discrepancy margins: by default those of ACOG Committee Opinion 700, "Methods for estimating the
due date" (Obstet Gynecol 2017;129:e150-e154), the table of differences between dating by LMP and
by ultrasonography beyond which the ultrasound dating is preferred: up to 15+6 weeks more than 7
days, 16+0 to 21+6 more than 10 days, 22+0 to 27+6 more than 14 days, from 28+0 more than 21 days.
They are a setting (`DiscrepancyMargins`): a unit with its own protocol passes its own bands.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

NAEGELE_DAYS = 280
_PLAUSIBLE_GA_DAYS = (0, 45 * 7)
EXTREME_Z = 4.0  # |z| beyond this is flagged, never shown as a plain centile

LMP, EDD, GA_AT_EXAM = "lmp", "edd", "ga"


@dataclass(frozen=True)
class Dating:
    """GA by dates as entered: `kind` is "lmp" or "edd" (with `date`) or "ga" (with `ga_days`,
    the GA at the exam date)."""

    kind: str
    date: dt.date | None = None
    ga_days: int | None = None

    def __post_init__(self) -> None:
        if self.kind in (LMP, EDD):
            if not isinstance(self.date, dt.date):
                raise ValueError(f"GA by dates from {self.kind.upper()} needs a date")
        elif self.kind == GA_AT_EXAM:
            if self.ga_days is None or not 0 < self.ga_days < _PLAUSIBLE_GA_DAYS[1]:
                raise ValueError(f"GA at the exam date must be 0-45 weeks, got {self.ga_days}")
        else:
            raise ValueError(f"unknown kind of dating {self.kind!r} (lmp, edd or ga)")

    @classmethod
    def from_lmp(cls, lmp: dt.date) -> Dating:
        return cls(LMP, date=lmp)

    @classmethod
    def from_edd(cls, edd: dt.date) -> Dating:
        return cls(EDD, date=edd)

    @classmethod
    def from_ga(cls, weeks: int, days: int = 0) -> Dating:
        if not 0 <= days <= 6:
            raise ValueError(f"days must be 0-6, got {days}")
        return cls(GA_AT_EXAM, ga_days=int(weeks) * 7 + int(days))

    def describe(self) -> str:
        if self.kind == LMP:
            return f"LMP {self.date.isoformat()}"  # type: ignore[union-attr]
        if self.kind == EDD:
            return f"EDD {self.date.isoformat()}"  # type: ignore[union-attr]
        return f"GA {format_ga_days(self.ga_days)} at the exam date"  # type: ignore[arg-type]

    def ga_days_at(self, exam_date: dt.date | None) -> tuple[int | None, str]:
        """(GA by dates in days at `exam_date`, note); None with the reason when it cannot be
        given (no exam date for an LMP or EDD, or a GA outside 0-45 weeks)."""
        if self.kind == GA_AT_EXAM:
            return self.ga_days, ""
        if exam_date is None:
            return None, f"{self.describe()} needs the exam date, which is not recorded"
        if self.kind == LMP:
            days = (exam_date - self.date).days  # type: ignore[operator]
        else:
            days = NAEGELE_DAYS - (self.date - exam_date).days  # type: ignore[operator]
        low, high = _PLAUSIBLE_GA_DAYS
        if not low < days < high:
            return None, (
                f"{self.describe()} gives {days} days at the exam date {exam_date.isoformat()}, "
                "outside 0-45 weeks: check the dates"
            )
        return days, ""


def format_ga_days(days: float | None) -> str:
    """'20w3d' for 143 days (whole days, rounded); '' for None."""
    if days is None or not math.isfinite(days):
        return ""
    whole = int(round(days))
    return f"{whole // 7}w{whole % 7}d"


@dataclass(frozen=True)
class DiscrepancyMargins:
    """Bands (GA by dates below `upper_days` -> margin in days), in increasing order; the last
    band's margin applies beyond. `source` is shown with every flag."""

    bands: tuple[tuple[int, int], ...]
    beyond_days: int
    source: str

    def margin_at(self, ga_days: float) -> int:
        for upper_days, margin in self.bands:
            if ga_days < upper_days:
                return margin
        return self.beyond_days


ACOG_2017_MARGINS = DiscrepancyMargins(
    bands=((16 * 7, 7), (22 * 7, 10), (28 * 7, 14)),
    beyond_days=21,
    source="ACOG Committee Opinion 700 (2017)",
)


@dataclass(frozen=True)
class Discrepancy:
    """GA by biometry minus GA by dates, in days; flagged past `margin_days`."""

    days: float
    margin_days: int
    flagged: bool
    source: str

    def text(self) -> str:
        sign = "+" if self.days >= 0 else "-"
        verdict = "beyond" if self.flagged else "within"
        return (
            f"{sign}{abs(self.days):.0f} days ({verdict} the margin of {self.margin_days} days, "
            f"{self.source})"
        )


def ga_discrepancy(
    ga_dates_days: float,
    ga_biometry_weeks: float,
    margins: DiscrepancyMargins = ACOG_2017_MARGINS,
) -> Discrepancy:
    """Discrepancy between GA by biometry and GA by dates, flagged past the margin that applies
    at the GA by dates."""
    days = ga_biometry_weeks * 7 - ga_dates_days
    margin = margins.margin_at(ga_dates_days)
    return Discrepancy(days, margin, abs(days) > margin, margins.source)


def ordinal(number: int) -> str:
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"


def centile_text(centile: float | None, z_score: float | None, extreme_z: float = EXTREME_Z) -> str:
    """How a centile is shown: '<1st' and '>99th' at the ends, an ordinal between; an extreme
    z-score is a flag asking for a check, never a plain number. '' when there is no centile."""
    if z_score is not None and abs(z_score) > extreme_z:
        side = "below" if z_score < 0 else "above"
        return (
            f"EXTREME: more than {extreme_z:g} SD {side} the mean for GA by dates "
            "(check the dates and the measurement)"
        )
    if centile is None or not math.isfinite(centile):
        return ""
    if centile < 1:
        return "<1st"
    if centile > 99:
        return ">99th"
    return ordinal(int(round(centile)))
