"""The record's status: a small enum with a tuple of reasons, rendered as one CSV text."""

from __future__ import annotations

from pathlib import Path

import pytest
from hc_studio.core.export import read_records_csv, write_records_csv
from hc_studio.core.records import MeasurementRecord, Status, parse_status_text, status_text
from hc_studio.core.spacing import Spacing


def record(status: Status, reasons: tuple[str, ...] = ()) -> MeasurementRecord:
    return MeasurementRecord("f.png", 0, Spacing.square(0.1), status=status, reasons=reasons)


@pytest.mark.parametrize(
    ("status", "reasons", "text"),
    [
        (Status.OK, (), "ok"),
        (
            Status.REVIEW,
            ("fit IoU 0.70", "low confidence 0.80"),
            "review: fit IoU 0.70, low confidence 0.80",
        ),
        (Status.NO_HEAD, (), "no head found"),
        (
            Status.NOT_A_HEAD,
            ("HC 12 mm is implausibly small",),
            "not a fetal head: HC 12 mm is implausibly small",
        ),
        (Status.ERROR, ("cannot read it, truncated",), "error: cannot read it, truncated"),
    ],
)
def test_status_text_renders_and_parses_back(status, reasons, text) -> None:
    assert status_text(status, reasons) == text
    assert record(status, reasons).status_text == text
    assert parse_status_text(text) == (status, reasons)


def test_status_is_a_str_enum_for_the_transition() -> None:
    assert record(Status.OK).status == "ok" and f"{record(Status.OK).status}" == "ok"
    assert MeasurementRecord("f.png", 0, Spacing.square(0.1), status="no head found").status is (
        Status.NO_HEAD
    )
    assert Status.NOT_A_HEAD.is_failure and Status.ERROR.is_failure
    assert not Status.REVIEW.is_failure and not Status.OK.is_failure


def test_reasons_never_hide_in_the_status_word() -> None:
    with pytest.raises(ValueError, match="review: fit IoU"):
        MeasurementRecord("f.png", 0, Spacing.square(0.1), status="review: fit IoU 0.70")
    with pytest.raises(ValueError, match="unknown status"):
        parse_status_text("fine")


def test_status_and_reasons_survive_the_csv(tmp_path: Path) -> None:
    records = [
        record(Status.REVIEW, ("fit IoU 0.70", "very small head")),
        record(Status.ERROR, ("bad header, 3 bytes",)),
        record(Status.NOT_A_HEAD, ("ellipse outside the image",)),
    ]
    path = tmp_path / "m.csv"
    write_records_csv(records, path)
    assert "review: fit IoU 0.70, very small head" in path.read_text()
    assert [(r.status, r.reasons) for r in read_records_csv(path)] == [
        (r.status, r.reasons) for r in records
    ]
