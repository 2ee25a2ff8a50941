"""An exam's value of each head parameter from up to N measurements on different frames.

As in vendors' obstetric packages, a parameter (HC, BPD, OFD) is measured on up to three frames
(`DEFAULT_LIMIT`, configurable) and the exam value is their mean, or the one measurement the user
selects; the spread (SD with two or more, and the range) is shown beside it.

Which frames count: a record with values in mm (calibrated), not rejected (`accepted is False`),
and either status "ok" or accepted by a person (a "review" record a person accepted counts).
Without a choice from the user, accepted records come first, then the most confident, then the
order read.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..records import MeasurementRecord
from .grouping import FrameKey, frame_key

DEFAULT_LIMIT = 3
# Repeated measurements of one head agree within a few percent (HC18's two observers differ by
# about 2.3 mm on HCs of 60-350 mm); a range wider than 10 % of the mean means the frames are not
# of one head (a folder of several patients, a wrong frame in the exam), and a mean of them would
# be a number of nobody's head: no exam value is given until the person selects or regroups.
MAX_RELATIVE_RANGE = 0.10
PARAMETERS = ("hc", "bpd", "ofd")
LABELS = {
    "hc": "HC",
    "bpd": "BPD outer-to-outer",
    "ofd": "OFD",
    "bpd_outer_inner": "BPD outer-to-inner",
}


def unusable_reason(record: MeasurementRecord) -> str:
    """'' when the record can enter an exam value, else why not."""
    if record.hc is None or record.ellipse_px is None:
        return f"no measurement ({record.status})"
    if not record.spacing.calibrated:
        return "uncalibrated (pixels, not mm)"
    if record.accepted is False:
        return "rejected"
    if str(record.status) != "ok" and record.accepted is not True:
        return f"not accepted ({record.status})"
    return ""


def choose_frames(
    records: Iterable[MeasurementRecord],
    limit: int = DEFAULT_LIMIT,
    chosen: Sequence[FrameKey] | None = None,
) -> list[MeasurementRecord]:
    """The records whose values make the exam value: `chosen` (in that order, unusable ones
    left out) or the best `limit` usable ones. One record per frame."""
    if limit < 1:
        raise ValueError(f"the number of measurements per parameter must be >= 1, got {limit}")
    usable = [record for record in records if not unusable_reason(record)]
    if chosen is not None:
        by_key = {frame_key(record): record for record in usable}
        picked = [by_key[key] for key in dict.fromkeys(chosen) if key in by_key]
        return picked[:limit]
    order = sorted(
        range(len(usable)),
        key=lambda i: (usable[i].accepted is not True, -(usable[i].confidence or 0.0), i),
    )
    return [usable[i] for i in order[:limit]]


@dataclass(frozen=True)
class ParameterValue:
    """One parameter's exam value from its measurements ((frame, value) pairs, in mm).

    `value` is the mean, or the selected frame's value when `selected` is set.
    """

    parameter: str
    measurements: tuple[tuple[FrameKey, float], ...]
    selected: FrameKey | None = None
    unit: str = "mm"

    def __post_init__(self) -> None:
        if self.selected is not None and self.selected not in dict(self.measurements):
            raise ValueError(f"selected frame {self.selected} is not among the measurements")

    @property
    def values(self) -> list[float]:
        return [value for _, value in self.measurements]

    @property
    def count(self) -> int:
        return len(self.measurements)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.measurements else None

    @property
    def disagreement(self) -> str:
        """Why the measurements cannot be averaged ('' when they can): their range is wider than
        `MAX_RELATIVE_RANGE` of their mean."""
        if self.count < 2:
            return ""
        low, high = min(self.values), max(self.values)
        mean = statistics.fmean(self.values)
        if mean > 0 and (high - low) > MAX_RELATIVE_RANGE * mean:
            return (
                f"measurements disagree ({low:.1f}-{high:.1f} {self.unit}, "
                f"{(high - low) / mean:.0%} of their mean): are these frames of one head?"
            )
        return ""

    @property
    def value(self) -> float | None:
        """The selected measurement, else the mean; None when the measurements disagree."""
        if self.selected is not None:
            return dict(self.measurements)[self.selected]
        if self.disagreement:
            return None
        return self.mean

    @property
    def how(self) -> str:
        if not self.measurements:
            return "no measurement"
        if self.selected is not None:
            return "selected measurement"
        if self.disagreement:
            return f"no exam value: {self.disagreement}"
        return "single measurement" if self.count == 1 else f"mean of {self.count}"

    @property
    def sd(self) -> float | None:
        return statistics.stdev(self.values) if self.count >= 2 else None

    @property
    def range(self) -> tuple[float, float] | None:
        return (min(self.values), max(self.values)) if self.measurements else None

    def spread_text(self) -> str:
        """'SD 0.8 mm, range 171.2 to 173.0 mm' ('' with fewer than two measurements); words,
        not a dash, between the ends, so that a narrow column can wrap the range."""
        if self.count < 2:
            return ""
        low, high = self.range  # type: ignore[misc]
        return f"SD {self.sd:.1f} {self.unit}, range {low:.1f} to {high:.1f} {self.unit}"


def exam_values(
    records: Iterable[MeasurementRecord],
    limit: int = DEFAULT_LIMIT,
    chosen: Sequence[FrameKey] | None = None,
    selected: Mapping[str, FrameKey] | None = None,
    extra: Mapping[str, Mapping[FrameKey, float | None]] | None = None,
) -> dict[str, ParameterValue]:
    """The exam value of HC, BPD and OFD (and of each `extra` parameter, e.g.
    {"bpd_outer_inner": {frame: mm}}) over the same chosen frames. `selected` maps a parameter
    to the one frame whose value the user selected instead of the mean."""
    frames = choose_frames(records, limit, chosen)
    selected = dict(selected or {})
    result: dict[str, ParameterValue] = {}
    sources: dict[str, Mapping[FrameKey, float | None]] = {
        name: {frame_key(r): getattr(r, name) for r in frames} for name in PARAMETERS
    }
    sources.update(extra or {})
    for name, by_frame in sources.items():
        pairs = tuple(
            (frame_key(r), float(by_frame[frame_key(r)]))
            for r in frames
            if by_frame.get(frame_key(r)) is not None and math.isfinite(by_frame[frame_key(r)])  # type: ignore[arg-type]
        )
        result[name] = ParameterValue(name, pairs, selected.get(name))
    return result


def usable_selection(
    values: Mapping[str, ParameterValue], selected: Mapping[str, FrameKey] | None
) -> dict[str, FrameKey]:
    """The part of `selected` that names one of each parameter's measurements in `values`
    (e.g. from `exam_values` without a selection): a selected frame the person has since taken
    out of the exam value, or moved to another exam, no longer counts."""
    return {
        name: key
        for name, key in (selected or {}).items()
        if name in values and key in dict(values[name].measurements)
    }


def chosen_with_selection(
    records: Iterable[MeasurementRecord],
    limit: int = DEFAULT_LIMIT,
    chosen: Sequence[FrameKey] | None = None,
    selected: Mapping[str, FrameKey] | None = None,
) -> list[FrameKey] | None:
    """`chosen`, or, when the person has not ticked frames (`chosen` None), the default choice
    with every usable selected frame in it (first, in place of the least good): a selection kept
    from an earlier session is never dropped because the default choice left its frame out.
    Returns `chosen` as it is when nothing needs adding."""
    if chosen is not None or not selected:
        return chosen
    records = list(records)
    usable = {frame_key(r) for r in records if not unusable_reason(r)}
    keys = [frame_key(r) for r in choose_frames(records, limit)]
    wanted = [key for key in dict.fromkeys(selected.values()) if key in usable]
    if all(key in keys for key in wanted):
        return None
    return [*wanted, *(key for key in keys if key not in wanted)][:limit]
