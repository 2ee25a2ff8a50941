"""The correction log: entries from automatic/final records, CSV round trip, injection, summary."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from hc_studio.core.biometry import HeadBiometry
from hc_studio.core.csv_safety import neutralise_cell, restore_cell
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.exam import (
    CorrectionEntry,
    read_correction_log,
    summarise,
    write_correction_log,
)
from hc_studio.core.gestational_age import hadlock_weeks
from hc_studio.core.records import MeasurementRecord
from hc_studio.core.spacing import Spacing

WHEN = dt.datetime(2025, 6, 1, 10, 30, 5, tzinfo=dt.UTC)


def rec(file: str, hc: float | None, origin: str = "auto", calibrated: bool = True):
    return MeasurementRecord(
        file=file,
        frame_index=0,
        spacing=Spacing.square(0.14, "csv") if calibrated else Spacing.uncalibrated(),
        ellipse_px=None if hc is None else Ellipse(100, 100, 80, 60, 0.0),
        # written with 3 decimals (micrometres): values with 3 decimals come back exactly
        biometry=None
        if hc is None
        else HeadBiometry(
            hc, round(hc / 3.6, 3), round(hc / 2.9, 3), 0.0, "mm" if calibrated else "px"
        ),
        origin=origin,
        accepted=True,
    )


def entries() -> list[CorrectionEntry]:
    return [
        CorrectionEntry.from_records(rec("a.png", 170.0), rec("a.png", 170.0), "ana", WHEN),
        CorrectionEntry.from_records(
            rec("b.png", 170.0), rec("b.png", 176.0, "edited"), "=HYPERLINK(1)", WHEN
        ),
        CorrectionEntry.from_records(
            rec("-c.png", 250.0), rec("-c.png", 246.0, "edited"), "'bo", WHEN
        ),
        CorrectionEntry.from_records(
            rec("d.png", 600.0, calibrated=False),
            rec("d.png", 640.0, "edited", calibrated=False),
            "ana",
            WHEN,
        ),
    ]


def test_entry_differences_in_mm_and_days_of_ga() -> None:
    edited = entries()[1]
    assert edited.hc_diff == pytest.approx(6.0)
    assert edited.hc_diff_ga_days == pytest.approx(
        7 * (hadlock_weeks(176.0) - hadlock_weeks(170.0))
    )
    assert entries()[3].hc_diff_ga_days is None  # pixels: no GA
    with pytest.raises(ValueError, match="different frames"):
        CorrectionEntry.from_records(rec("a.png", 1.0), rec("b.png", 1.0), "ana", WHEN)


def test_round_trip_and_cells_neutralised(tmp_path: Path) -> None:
    path = tmp_path / "log" / "corrections.csv"
    assert write_correction_log(entries(), path) == 4
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[1]["accepted_by"] == "'=HYPERLINK(1)"
    assert rows[2]["file"] == "'-c.png" and rows[2]["accepted_by"] == "'bo"
    assert rows[2]["hc_diff"] == "-4.000"  # numbers are never prefixed
    assert rows[0]["accepted_at"] == "2025-06-01T10:30:05+00:00"

    back = read_correction_log(path)

    assert back == entries()


def test_neutralise_and_restore_are_inverse() -> None:
    for text in ["=1+1", "+x", "-x", "@sum", "\tx", "\rx", "'", "''=", "plain", "-3.5", ""]:
        assert restore_cell(neutralise_cell(text)) == text
    assert neutralise_cell("-3.5") == "-3.5" and neutralise_cell("-x") == "'-x"


def test_a_foreign_csv_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="other.csv: not a correction log"):
        read_correction_log(path)


def test_session_summary_counts_and_sizes() -> None:
    summary = summarise(entries())
    assert (summary.accepted, summary.corrected) == (4, 3)
    assert summary.mean_abs_hc_diff == pytest.approx(5.0)  # mm entries only: 6 and 4
    assert summary.max_abs_hc_diff == pytest.approx(6.0)
    assert summary.max_abs_ga_days is not None and summary.max_abs_ga_days > 0
    assert summary.text().startswith("3 of 4 accepted measurements corrected (75 %)")
    assert summarise([]).text() == "no accepted measurement"
