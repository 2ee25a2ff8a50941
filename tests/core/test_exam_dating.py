"""GA by dates per exam: LMP, EDD, GA at the exam date; discrepancy; how centiles read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hc_studio.core.biometry import HeadBiometry
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.exam import (
    ACOG_2017_MARGINS,
    Dating,
    assess_exam,
    centile_text,
    exam_values,
    ga_discrepancy,
    group_into_exams,
)
from hc_studio.core.gestational_age import hadlock_weeks, intergrowth_hc_mean_sd
from hc_studio.core.records import MeasurementRecord
from hc_studio.core.spacing import Spacing

EXAM_DAY = dt.date(2025, 6, 1)


def test_lmp_edd_and_ga_give_the_same_ga_at_the_exam_date() -> None:
    lmp = EXAM_DAY - dt.timedelta(days=20 * 7 + 3)
    edd = lmp + dt.timedelta(days=280)
    assert Dating.from_lmp(lmp).ga_days_at(EXAM_DAY) == (143, "")
    assert Dating.from_edd(edd).ga_days_at(EXAM_DAY) == (143, "")
    assert Dating.from_ga(20, 3).ga_days_at(None) == (143, "")


def test_dating_refuses_what_it_cannot_know() -> None:
    days, note = Dating.from_lmp(EXAM_DAY).ga_days_at(None)
    assert days is None and "exam date" in note
    days, note = Dating.from_lmp(EXAM_DAY + dt.timedelta(days=3)).ga_days_at(EXAM_DAY)
    assert days is None and "check the dates" in note
    with pytest.raises(ValueError, match="0-6"):
        Dating.from_ga(20, 7)
    with pytest.raises(ValueError, match="unknown kind"):
        Dating("ivf")


@pytest.mark.parametrize(
    ("ga_days", "margin"), [(13 * 7, 7), (20 * 7, 10), (24 * 7, 14), (32 * 7, 21)]
)
def test_discrepancy_margin_follows_the_ga_by_dates(ga_days: int, margin: int) -> None:
    inside = ga_discrepancy(ga_days, (ga_days + margin) / 7)
    outside = ga_discrepancy(ga_days, (ga_days - margin - 1) / 7)
    assert inside.margin_days == margin and not inside.flagged
    assert outside.flagged and outside.days == pytest.approx(-margin - 1)
    assert ACOG_2017_MARGINS.source in outside.text() and "beyond" in outside.text()


def test_centile_wording_at_the_ends_and_extreme_z() -> None:
    assert centile_text(0.4, -2.65) == "<1st"
    assert centile_text(99.6, 2.65) == ">99th"
    assert centile_text(50.2, 0.0) == "50th"
    assert centile_text(2.6, -1.9) == "3rd"
    assert centile_text(11.0, -1.2) == "11th"
    assert centile_text(21.4, -0.8) == "21st"
    extreme = centile_text(0.0, -14.73)
    assert "EXTREME" in extreme and "14.73" not in extreme and "0th" not in extreme
    assert centile_text(None, None) == ""


def _exam_record(folder: Path, hc: float) -> MeasurementRecord:
    return MeasurementRecord(
        file=str(folder / "f.png"),
        frame_index=0,
        spacing=Spacing.square(0.14, "csv"),
        ellipse_px=Ellipse(100, 100, 80, 60, 0.0),
        biometry=HeadBiometry(hc, hc / 3.6, hc / 2.9, 0.0, "mm"),
    )


def test_each_exam_uses_its_own_ga_by_dates(tmp_path: Path) -> None:
    """Two patients: the one at 20 weeks must not be read against the other's 32 weeks."""
    hc20 = intergrowth_hc_mean_sd(20.0)[0]
    hc32 = intergrowth_hc_mean_sd(32.0)[0]
    book = group_into_exams(
        [_exam_record(tmp_path / "early", hc20), _exam_record(tmp_path / "late", hc32)]
    )
    early, late = book.exam("folder-1"), book.exam("folder-2")
    early.dating = Dating.from_ga(20)
    late.exam_date = EXAM_DAY
    late.dating = Dating.from_lmp(EXAM_DAY - dt.timedelta(days=32 * 7))

    assessed = {e.key: assess_exam(e, exam_values(e.records)) for e in book}

    for key, weeks in (("folder-1", 20), ("folder-2", 32)):
        result = assessed[key]
        assert result.ga_dates_days == weeks * 7
        assert result.centile.text == "50th" and result.centile.z_score == pytest.approx(
            0, abs=1e-9
        )
    late_hadlock = assessed["folder-2"].ga_by_equation[0]
    assert late_hadlock.weeks == pytest.approx(hadlock_weeks(hc32))
    assert assessed["folder-2"].discrepancy.days == pytest.approx(hadlock_weeks(hc32) * 7 - 224)
    # the same HC read against the wrong patient's GA would be extreme: that is flagged
    wrong = assess_exam(late, exam_values([_exam_record(tmp_path / "late", hc20)]))
    assert wrong.centile.extreme and "EXTREME" in wrong.centile.text
    assert wrong.discrepancy.flagged


def test_an_exam_without_dating_says_so(tmp_path: Path) -> None:
    (exam,) = group_into_exams([_exam_record(tmp_path, 170.0)])
    result = assess_exam(exam, exam_values(exam.records))
    assert result.ga_dates_days is None and result.discrepancy is None
    assert result.dates_note == "GA by dates not entered for this exam"
    assert result.centile.text == "" and result.ga_by_equation[0].weeks is not None
