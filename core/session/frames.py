"""What is known about one frame, and the one place where a record's status is read.

`frame_state(record)` is the only function of the app and its session that looks at
`record.status`; everything else (list words, table colours, sort order, batch summary) asks it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..records import MeasurementRecord, Status

FrameKey = tuple[str, int]  # (file path, frame index)


class FrameState(Enum):
    """What a record says about its frame; the order is the table's sort order (worst first)."""

    ERROR = 0  # could not be read or processed
    NO_HEAD = 1  # read and measured, but no (fetal) head: no values
    REVIEW = 2  # measured, values kept, a person should look
    OK = 3


def frame_state(record: MeasurementRecord) -> FrameState:
    """The state of `record` (the one place that interprets `record.status`)."""
    if record.status is Status.ERROR:
        return FrameState.ERROR
    if record.ellipse_px is None:
        return FrameState.NO_HEAD  # no head found, or not a fetal head: no values either way
    if record.status is Status.REVIEW:
        return FrameState.REVIEW
    if record.status is Status.OK:
        return FrameState.OK
    return FrameState.NO_HEAD


def is_flagged(record: MeasurementRecord) -> bool:
    """Rows a person should look at: review, no head, error."""
    return frame_state(record) is not FrameState.OK


def batch_summary(records: Iterable[MeasurementRecord]) -> str:
    """`N frame(s): a ok, b to review, c without a head, d error(s)`."""
    counts = dict.fromkeys(FrameState, 0)
    total = 0
    for record in records:
        counts[frame_state(record)] += 1
        total += 1
    return (
        f"{total} frame(s): {counts[FrameState.OK]} ok, {counts[FrameState.REVIEW]} to review, "
        f"{counts[FrameState.NO_HEAD]} without a head, {counts[FrameState.ERROR]} error(s)"
    )


@dataclass
class FrameEntry:
    """One frame of the session: the automatic and the current record, the probability map.

    `prob` is not saved with the session (it is the network's output, measured again on demand).
    """

    auto: MeasurementRecord | None = None
    record: MeasurementRecord | None = None
    prob: np.ndarray | None = None
    error: str | None = None  # could not be read or measured
    read_error: str | None = None  # could not be read at all
    measuring: bool = False


NO_MODEL_PREFIX = "no model"


def status_word(entry: FrameEntry) -> str:
    """The one-word status shown in the frame list."""
    record = entry.record
    if entry.measuring:
        return "measuring…"
    if record is None:
        if entry.error and entry.error.startswith(NO_MODEL_PREFIX):
            return "no model"
        return "error" if entry.error else "not measured"
    if record.accepted is True:
        return "accepted"
    if record.accepted is False:
        return "rejected"
    state = frame_state(record)
    if state is FrameState.ERROR:
        return "error"
    if state is FrameState.NO_HEAD:
        return "not a head" if record.status is Status.NOT_A_HEAD else "no head"
    if state is FrameState.REVIEW:
        return "review"
    return "edited" if record.origin == "edited" else "ok"


def status_text(record: MeasurementRecord) -> str:
    """The record's status as shown to a person, with its reasons."""
    return record.status_text


def review_text(record: MeasurementRecord) -> str:
    """Why a frame in review should be looked at ("" when it is not in review)."""
    if frame_state(record) is not FrameState.REVIEW:
        return ""
    return ", ".join(record.reasons)


def failure_text(record: MeasurementRecord) -> str:
    """Why a frame gave no values ("" when it has some)."""
    return "" if record.ellipse_px is not None else status_text(record)
