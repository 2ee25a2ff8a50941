"""Training events: the JSON lines a training process writes and the GUI reads (no torch here).

Every event is one JSON object on one line with an `event` field naming its type, e.g.
`{"event": "progress", "iteration": 20, ...}`. The trainer writes each line to stdout (flushed)
and appends it to `RUN_DIR/events.jsonl`, so a finished or detached run can be reopened with
`read_events`. Non-finite numbers are written as `null`. Readers ignore fields they do not know
and turn unknown event types into `UnknownEvent`, so older GUIs read newer runs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol


def _now() -> float:
    return round(time.time(), 3)


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = ""
    time: float = field(default_factory=_now, kw_only=True)  # unix seconds

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **_finite(dataclasses.asdict(self))}

    def to_json(self) -> str:
        """One line of JSON (no newline)."""
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))


@dataclass(frozen=True)
class Start(Event):
    """The run begins. counts: {"labelled", "unlabelled", "validation", "skipped"} frames."""

    kind: ClassVar[str] = "start"
    method: str = ""
    run_dir: str = ""
    total_iterations: int = 0
    start_iteration: int = 0  # > 0 when resuming
    counts: dict[str, int] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Status(Event):
    """A stage of the run in words (e.g. "decoding frames"), for the GUI's status line."""

    kind: ClassVar[str] = "status"
    message: str = ""


@dataclass(frozen=True)
class Progress(Event):
    """After a training step. losses: the method's scalars ("loss", "sup", "unsup", "weight")."""

    kind: ClassVar[str] = "progress"
    iteration: int = 0  # steps done so far, 1..total_iterations
    total_iterations: int = 0
    stage: str = "train"  # "warmup" (supervised only) or "train"
    losses: dict[str, float | None] = field(default_factory=dict)
    lr: float = 0.0
    images_per_s: float | None = None
    eta_s: float | None = None


@dataclass(frozen=True)
class Validation(Event):
    """Held-out figures of the student. hc_mae_mm: mean absolute HC difference in mm."""

    kind: ClassVar[str] = "validation"
    iteration: int = 0
    dice: float | None = None
    hd95_mm: float | None = None
    hc_mae_mm: float | None = None
    frames: int = 0
    no_ellipse: int = 0  # frames where no ellipse could be fitted to the prediction
    best: bool = False


@dataclass(frozen=True)
class Checkpoint(Event):
    kind: ClassVar[str] = "checkpoint"
    iteration: int = 0
    path: str = ""
    tag: str = "last"  # "last", "best" or "snapshot" (--keep-snapshots)


@dataclass(frozen=True)
class Done(Event):
    """The run ended (completed, or stopped early by the user)."""

    kind: ClassVar[str] = "done"
    iteration: int = 0
    stopped_early: bool = False
    best_iteration: int | None = None
    best_dice: float | None = None
    best_hd95_mm: float | None = None
    best_hc_mae_mm: float | None = None
    best_checkpoint: str | None = None
    last_checkpoint: str | None = None
    onnx_path: str | None = None


@dataclass(frozen=True)
class Fold(Event):
    """A cross-validation fold of `train --adapt` begins (`stage` "training") or has been
    scored ("scored", with the fold's frame count and both models' mean Dice on them)."""

    kind: ClassVar[str] = "fold"
    fold: int = 0  # 1..folds
    folds: int = 0
    stage: str = "training"
    frames: int = 0
    dice_candidate: float | None = None
    dice_current: float | None = None


@dataclass(frozen=True)
class Error(Event):
    """The run cannot go on; the process exits with a non-zero code."""

    kind: ClassVar[str] = "error"
    message: str = ""


@dataclass(frozen=True)
class ImportProblemEvent(Event):
    """A file skipped by the import, with the reason."""

    kind: ClassVar[str] = "import_problem"
    path: str = ""
    problem: str = ""


@dataclass(frozen=True)
class UnknownEvent(Event):
    """An event type this version does not know; `data` keeps the whole object."""

    kind: ClassVar[str] = "unknown"
    name: str = ""
    data: dict[str, Any] = field(default_factory=dict)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        Start,
        Status,
        Progress,
        Validation,
        Checkpoint,
        Done,
        Fold,
        Error,
        ImportProblemEvent,
    )
}


def parse_event(line: str) -> Event:
    """The event on one JSON line. Raises ValueError if the line is not a JSON event object."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a JSON line: {line[:80]!r}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise ValueError(f"not an event object: {line[:80]!r}")
    cls = EVENT_TYPES.get(data["event"])
    if cls is None:
        return UnknownEvent(name=data["event"], data=data)
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


def read_events(path: str | Path) -> list[Event]:
    """All events of an `events.jsonl` file, skipping lines that are not events (e.g. a line
    cut short by a crash)."""
    events = []
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            try:
                events.append(parse_event(line))
            except ValueError:
                continue
    return events


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...


class EventWriter:
    """Writes each event as one flushed line to a stream (stdout) and appends it to a file."""

    def __init__(self, log_path: str | Path | None, stream: IO[str] | None = sys.stdout) -> None:
        self.stream = stream
        self.log_path = Path(log_path) if log_path is not None else None
        self._log: IO[str] | None = None

    def emit(self, event: Event) -> None:
        line = event.to_json() + "\n"
        if self.stream is not None:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (BrokenPipeError, ValueError):
                self.stream = None  # the reader went away; the file log still has everything
        if self.log_path is not None:
            if self._log is None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log = self.log_path.open("a", encoding="utf-8")
            self._log.write(line)
            self._log.flush()

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def iter_event_lines(stream: IO[str]) -> Iterator[Event]:
    """Events from a live stream of lines (a child's stdout); non-event lines are skipped."""
    for line in stream:
        try:
            yield parse_event(line)
        except ValueError:
            continue


def _finite(value: Any) -> Any:
    """`value` with NaN / infinity replaced by None, recursively (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
