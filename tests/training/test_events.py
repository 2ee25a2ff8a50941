"""Training events as JSON lines (torch-free, shared with the GUI)."""

from __future__ import annotations

import io
import json
import math

import pytest
from hc_studio.core.events import (
    EVENT_TYPES,
    Done,
    EventWriter,
    Progress,
    UnknownEvent,
    Validation,
    parse_event,
    read_events,
)


@pytest.mark.parametrize("kind", sorted(EVENT_TYPES))
def test_every_event_type_round_trips(kind: str) -> None:
    event = EVENT_TYPES[kind]()
    line = event.to_json()
    assert "\n" not in line and json.loads(line)["event"] == kind
    assert parse_event(line) == event


def test_non_finite_numbers_become_null() -> None:
    event = Validation(iteration=3, dice=0.5, hd95_mm=math.inf, hc_mae_mm=math.nan)
    data = json.loads(event.to_json())
    assert data["hd95_mm"] is None and data["hc_mae_mm"] is None and data["dice"] == 0.5
    progress = Progress(losses={"loss": math.nan, "sup": 0.25})
    assert json.loads(progress.to_json())["losses"] == {"loss": None, "sup": 0.25}


def test_unknown_types_and_fields_are_tolerated() -> None:
    unknown = parse_event('{"event": "telemetry", "x": 1}')
    assert isinstance(unknown, UnknownEvent) and unknown.name == "telemetry"
    done = parse_event('{"event": "done", "iteration": 5, "from_the_future": true}')
    assert isinstance(done, Done) and done.iteration == 5


@pytest.mark.parametrize("line", ["not json", "[1, 2]", '{"no_event": 1}'])
def test_lines_that_are_not_events_raise_value_error(line: str) -> None:
    with pytest.raises(ValueError):
        parse_event(line)


def test_writer_writes_stream_and_file_and_reader_skips_a_cut_line(tmp_path) -> None:
    stream = io.StringIO()
    log = tmp_path / "events.jsonl"
    writer = EventWriter(log, stream)
    writer.emit(Progress(iteration=1))
    writer.emit(Done(iteration=1))
    writer.close()
    assert stream.getvalue() == log.read_text()
    with log.open("a") as handle:
        handle.write('{"event": "progr')  # a crash in the middle of a line
    assert [type(e) for e in read_events(log)] == [Progress, Done]
