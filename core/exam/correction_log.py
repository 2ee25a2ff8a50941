"""The correction log: for each accepted measurement, what the machine said and what was kept.

One entry per accepted frame: the automatic HC/BPD/OFD, the final (accepted, possibly edited)
ones, the HC difference in mm and in days of GA by Hadlock 1984, who accepted it and when. Where
the person placed the BPD outer-to-inner caliper by hand, its automatic and final lengths are
logged too, marked edited (the columns are empty otherwise; a log without them still reads). The CSV
is written atomically; text cells that a spreadsheet would run as a formula (starting with = + -
@ tab or CR) get a leading apostrophe unless they are numbers, and reading strips it again.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_write
from ..csv_safety import SafeDictWriter, restore_cell
from ..gestational_age import HADLOCK_HC_RANGE_MM, HADLOCK_METHOD, hadlock_weeks
from ..records import MeasurementRecord

COLUMNS: tuple[str, ...] = (
    "file",
    "frame_index",
    "unit",
    "hc_auto",
    "hc_final",
    "hc_diff",
    "hc_diff_ga_days_hadlock",
    "bpd_auto",
    "bpd_final",
    "ofd_auto",
    "ofd_final",
    "origin",
    "accepted_by",
    "accepted_at",
)
OUTER_INNER_COLUMNS = ("bpd_outer_inner_auto", "bpd_outer_inner_final", "bpd_outer_inner_origin")
ALL_COLUMNS = COLUMNS + OUTER_INNER_COLUMNS
_TEXT_COLUMNS = ("file", "unit", "origin", "accepted_by", "bpd_outer_inner_origin")


def _hadlock_days(hc_mm: float | None) -> float | None:
    if hc_mm is None:
        return None
    low, high = HADLOCK_HC_RANGE_MM
    return hadlock_weeks(hc_mm) * 7 if low <= hc_mm <= high else None


@dataclass(frozen=True)
class CorrectionEntry:
    """One accepted measurement: automatic and final values (in `unit`), who and when."""

    file: str
    frame_index: int
    unit: str
    hc_auto: float | None
    hc_final: float | None
    bpd_auto: float | None
    bpd_final: float | None
    ofd_auto: float | None
    ofd_final: float | None
    origin: str
    accepted_by: str
    accepted_at: dt.datetime
    bpd_outer_inner_auto: float | None = None
    bpd_outer_inner_final: float | None = None
    bpd_outer_inner_origin: str = ""  # "edited" when placed by hand, "" when not logged

    def with_outer_inner(self, automatic: float | None, final: float) -> CorrectionEntry:
        """This entry with the BPD outer-to-inner caliper the person placed by hand."""
        return dataclasses.replace(
            self,
            bpd_outer_inner_auto=automatic,
            bpd_outer_inner_final=final,
            bpd_outer_inner_origin="edited",
        )

    @classmethod
    def from_records(
        cls,
        automatic: MeasurementRecord,
        final: MeasurementRecord,
        accepted_by: str,
        accepted_at: dt.datetime,
    ) -> CorrectionEntry:
        if (automatic.file, automatic.frame_index) != (final.file, final.frame_index):
            raise ValueError(
                f"automatic and final records are of different frames: {automatic.file} "
                f"#{automatic.frame_index} vs {final.file} #{final.frame_index}"
            )
        return cls(
            file=final.file,
            frame_index=final.frame_index,
            unit=final.unit,
            hc_auto=automatic.hc,
            hc_final=final.hc,
            bpd_auto=automatic.bpd,
            bpd_final=final.bpd,
            ofd_auto=automatic.ofd,
            ofd_final=final.ofd,
            origin=final.origin,
            accepted_by=accepted_by,
            accepted_at=accepted_at,
        )

    @property
    def hc_diff(self) -> float | None:
        """Final minus automatic HC."""
        if self.hc_auto is None or self.hc_final is None:
            return None
        return self.hc_final - self.hc_auto

    @property
    def hc_diff_ga_days(self) -> float | None:
        """GA (Hadlock 1984) of the final HC minus that of the automatic HC, in days; None when
        uncalibrated or either HC is outside the equation's range."""
        if self.unit != "mm":
            return None
        auto, final = _hadlock_days(self.hc_auto), _hadlock_days(self.hc_final)
        return None if auto is None or final is None else final - auto

    @property
    def corrected(self) -> bool:
        diff = self.hc_diff
        edited = "edited" in (self.origin, self.bpd_outer_inner_origin)
        return edited or (diff is not None and abs(diff) > 0.05)


def _number(value: float | None, decimals: int = 3) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{decimals}f}"


def _row(entry: CorrectionEntry) -> dict[str, str]:
    row = {
        "file": entry.file,
        "frame_index": str(entry.frame_index),
        "unit": entry.unit,
        "hc_auto": _number(entry.hc_auto),
        "hc_final": _number(entry.hc_final),
        "hc_diff": _number(entry.hc_diff),
        "hc_diff_ga_days_hadlock": _number(entry.hc_diff_ga_days, 2),
        "bpd_auto": _number(entry.bpd_auto),
        "bpd_final": _number(entry.bpd_final),
        "ofd_auto": _number(entry.ofd_auto),
        "ofd_final": _number(entry.ofd_final),
        "origin": entry.origin,
        "accepted_by": entry.accepted_by,
        "accepted_at": entry.accepted_at.isoformat(timespec="seconds"),
        "bpd_outer_inner_auto": _number(entry.bpd_outer_inner_auto),
        "bpd_outer_inner_final": _number(entry.bpd_outer_inner_final),
        "bpd_outer_inner_origin": entry.bpd_outer_inner_origin,
    }
    return row


def write_correction_log(entries: Iterable[CorrectionEntry], path: str | Path) -> int:
    """Write the log atomically (columns `ALL_COLUMNS`); returns the number of rows."""
    entries = list(entries)
    with atomic_write(path, newline="", encoding="utf-8") as handle:
        writer = SafeDictWriter(handle, fieldnames=list(ALL_COLUMNS))
        writer.writeheader()
        writer.writerows(_row(entry) for entry in entries)
    return len(entries)


def _optional_float(text: str) -> float | None:
    return float(text) if text.strip() else None


def read_correction_log(path: str | Path) -> list[CorrectionEntry]:
    """Read a log written by `write_correction_log`; ValueError naming the file and line."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not a correction log, missing columns {missing}")
        entries = []
        for row in reader:
            try:
                text = {column: restore_cell(row.get(column) or "") for column in _TEXT_COLUMNS}
                entries.append(
                    CorrectionEntry(
                        file=text["file"],
                        frame_index=int(row["frame_index"]),
                        unit=text["unit"],
                        hc_auto=_optional_float(row["hc_auto"]),
                        hc_final=_optional_float(row["hc_final"]),
                        bpd_auto=_optional_float(row["bpd_auto"]),
                        bpd_final=_optional_float(row["bpd_final"]),
                        ofd_auto=_optional_float(row["ofd_auto"]),
                        ofd_final=_optional_float(row["ofd_final"]),
                        origin=text["origin"],
                        accepted_by=text["accepted_by"],
                        accepted_at=dt.datetime.fromisoformat(row["accepted_at"]),
                        bpd_outer_inner_auto=_optional_float(row.get("bpd_outer_inner_auto") or ""),
                        bpd_outer_inner_final=_optional_float(
                            row.get("bpd_outer_inner_final") or ""
                        ),
                        bpd_outer_inner_origin=text["bpd_outer_inner_origin"],
                    )
                )
            except (ValueError, TypeError) as error:
                raise ValueError(f"{path}:{reader.line_num}: {error}") from None
    return entries


@dataclass(frozen=True)
class CorrectionSummary:
    """How often and how much the machine was corrected (HC, mm entries only for sizes)."""

    accepted: int
    corrected: int
    mean_abs_hc_diff: float | None
    max_abs_hc_diff: float | None
    mean_abs_ga_days: float | None
    max_abs_ga_days: float | None

    def text(self) -> str:
        if not self.accepted:
            return "no accepted measurement"
        share = 100.0 * self.corrected / self.accepted
        line = (
            f"{self.corrected} of {self.accepted} accepted measurements corrected ({share:.0f} %)"
        )
        if self.corrected and self.mean_abs_hc_diff is not None:
            line += (
                f"; HC changed by {self.mean_abs_hc_diff:.1f} mm on average "
                f"(at most {self.max_abs_hc_diff:.1f} mm)"
            )
            if self.mean_abs_ga_days is not None:
                line += (
                    f", {self.mean_abs_ga_days:.1f} days of GA by {HADLOCK_METHOD} "
                    f"(at most {self.max_abs_ga_days:.1f})"
                )
        return line


def summarise(entries: Sequence[CorrectionEntry]) -> CorrectionSummary:
    """Summary over a session's (or an exam's) log; sizes are over the corrected mm entries."""
    corrected = [entry for entry in entries if entry.corrected]
    mm_diffs = [abs(e.hc_diff) for e in corrected if e.unit == "mm" and e.hc_diff is not None]
    day_diffs = [abs(e.hc_diff_ga_days) for e in corrected if e.hc_diff_ga_days is not None]
    return CorrectionSummary(
        accepted=len(entries),
        corrected=len(corrected),
        mean_abs_hc_diff=statistics.fmean(mm_diffs) if mm_diffs else None,
        max_abs_hc_diff=max(mm_diffs) if mm_diffs else None,
        mean_abs_ga_days=statistics.fmean(day_diffs) if day_diffs else None,
        max_abs_ga_days=max(day_diffs) if day_diffs else None,
    )
