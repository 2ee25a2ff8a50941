"""Exam values from up to three measurements: mean, the selected one, the spread."""

from __future__ import annotations

import statistics

import pytest
from hc_studio.core.biometry import HeadBiometry
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.exam import choose_frames, exam_values
from hc_studio.core.records import MeasurementRecord, Status
from hc_studio.core.spacing import Spacing


def rec(index: int, hc: float | None, **changes) -> MeasurementRecord:
    values = dict(
        file="exam/f.dcm",
        frame_index=index,
        spacing=Spacing.square(0.14, "dicom-us-region"),
        ellipse_px=Ellipse(100, 100, 80, 60, 0.0),
        biometry=None if hc is None else HeadBiometry(hc, hc / 3.6, hc / 2.9, 0.0, "mm"),
        confidence=0.95,
    )
    values.update(changes)
    return MeasurementRecord(**values)


def test_mean_of_three_with_sd_and_range() -> None:
    records = [rec(0, 170.0), rec(1, 172.0), rec(2, 177.0)]
    values = exam_values(records)
    hc = values["hc"]
    assert hc.count == 3 and hc.value == pytest.approx(173.0)
    assert hc.sd == pytest.approx(statistics.stdev([170.0, 172.0, 177.0]))
    assert hc.range == (170.0, 177.0) and hc.how == "mean of 3"
    assert hc.spread_text() == "SD 3.6 mm, range 170.0 to 177.0 mm"
    assert values["bpd"].value == pytest.approx(173.0 / 3.6)
    assert values["ofd"].value == pytest.approx(173.0 / 2.9)


def test_limit_keeps_accepted_then_most_confident() -> None:
    records = [
        rec(0, 160.0, confidence=0.90),
        rec(1, 161.0, confidence=0.99),
        rec(2, 162.0, confidence=0.97),
        rec(3, 163.0, confidence=0.80, accepted=True),
    ]
    assert [r.frame_index for r in choose_frames(records)] == [3, 1, 2]
    assert [r.frame_index for r in choose_frames(records, limit=2)] == [3, 1]
    with pytest.raises(ValueError, match=">= 1"):
        choose_frames(records, limit=0)


def test_unusable_records_never_enter_the_exam_value() -> None:
    records = [
        rec(0, 170.0),
        rec(1, 999.0, accepted=False),
        rec(2, 999.0, spacing=Spacing.uncalibrated()),
        rec(3, 999.0, status=Status.REVIEW, reasons=("fit IoU 0.80",)),
        rec(4, 174.0, status=Status.REVIEW, reasons=("fit IoU 0.80",), accepted=True),
        rec(5, None, ellipse_px=None, status=Status.NO_HEAD),
    ]
    assert exam_values(records)["hc"].values == [174.0, 170.0]


def test_the_user_chooses_frames_and_selects_one_value() -> None:
    records = [rec(0, 170.0), rec(1, 172.0), rec(2, 177.0), rec(3, 180.0)]
    values = exam_values(
        records, chosen=[("exam/f.dcm", 3), ("exam/f.dcm", 0)], selected={"hc": ("exam/f.dcm", 0)}
    )
    assert values["hc"].values == [180.0, 170.0]
    assert values["hc"].value == 170.0 and values["hc"].how == "selected measurement"
    assert values["bpd"].value == pytest.approx(175.0 / 3.6)  # mean: nothing selected for BPD
    with pytest.raises(ValueError, match="not among"):
        exam_values(records, limit=1, selected={"hc": ("exam/f.dcm", 3)})


def test_extra_parameter_over_the_same_frames() -> None:
    records = [rec(0, 170.0), rec(1, 172.0)]
    values = exam_values(records, extra={"bpd_outer_inner": {("exam/f.dcm", 0): 45.0}})
    assert values["bpd_outer_inner"].values == [45.0] and values["bpd_outer_inner"].sd is None


def test_measurements_of_different_heads_give_no_exam_value() -> None:
    # Three patients' frames in one folder (80.8, 172.9 and 292.9 mm) once gave "HC 182.2 mm,
    # mean of 3": a number of nobody's head, with a GA of 20.6 weeks.
    records = [rec(0, 80.8), rec(1, 172.9), rec(2, 292.9)]
    hc = exam_values(records)["hc"]
    assert hc.value is None and hc.disagreement
    assert "measurements disagree" in hc.how and "one head" in hc.how
    assert hc.spread_text()  # the spread is still shown
    chosen = exam_values(records, selected={"hc": ("exam/f.dcm", 1)})["hc"]
    assert chosen.value == pytest.approx(172.9)  # a person's selection stands


def test_close_measurements_are_averaged() -> None:
    hc = exam_values([rec(0, 170.0), rec(1, 172.0), rec(2, 174.0)])["hc"]
    assert hc.disagreement == "" and hc.value == pytest.approx(172.0)
