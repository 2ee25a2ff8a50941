"""GA by dates per exam, as the session keeps it: one `ExamDating` per file of the exam.

The window groups frames into exams (`core.exam.group_into_exams`) and the person enters GA by
dates for one exam; the session stores it for each FILE of that exam, so that a frame's centile
and z-score come from its own exam's dating and never from another patient's (a single
"GA by dates" for every open frame was the bug). Stored per file, the datings survive regrouping
and need no exam identifier in the saved session.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..exam.dating import Dating


@dataclass(frozen=True)
class ExamDating:
    """GA by dates as entered for an exam (None: not entered) and the exam date."""

    dating: Dating | None = None
    exam_date: dt.date | None = None

    def ga_weeks(self) -> float | None:
        """GA by dates at the exam date in weeks, or None when it cannot be given."""
        if self.dating is None:
            return None
        days, _note = self.dating.ga_days_at(self.exam_date)
        return None if days is None else days / 7

    def to_json(self) -> dict:
        dating = self.dating
        return {
            "kind": dating.kind if dating else None,
            "date": dating.date.isoformat() if dating and dating.date else None,
            "ga_days": dating.ga_days if dating else None,
            "exam_date": self.exam_date.isoformat() if self.exam_date else None,
        }

    @classmethod
    def from_json(cls, data: dict) -> ExamDating:
        """Raises ValueError (or KeyError/TypeError) on data it cannot read."""
        kind = data.get("kind")
        dating = None
        if kind:
            date = data.get("date")
            ga_days = data.get("ga_days")
            dating = Dating(
                str(kind),
                date=dt.date.fromisoformat(date) if date else None,
                ga_days=None if ga_days is None else int(ga_days),
            )
        exam_date = data.get("exam_date")
        return cls(dating, dt.date.fromisoformat(exam_date) if exam_date else None)
