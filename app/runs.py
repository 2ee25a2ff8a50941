"""Training runs on disk: each run folder has `events.jsonl`, `run.json` (the settings the
trainer resumes with) and `model.onnx` once exported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.events import Done, Error, Progress, Start, Validation, read_events

EVENTS_FILE = "events.jsonl"
RUN_FILE = "run.json"
MODEL_FILE = "model.onnx"


@dataclass(frozen=True)
class RunSummary:
    """What the runs list shows for one run folder."""

    folder: Path
    method: str
    state: str  # "done", "stopped", "failed", "incomplete"
    iteration: int
    total_iterations: int
    dice: float | None
    hd95_mm: float | None
    hc_mae_mm: float | None
    model_path: Path | None
    message: str = ""

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def resumable(self) -> bool:
        return (
            self.state in ("stopped", "incomplete", "failed") and (self.folder / RUN_FILE).is_file()
        )


def summarise_run(folder: str | Path) -> RunSummary | None:
    """The summary of a run folder, or None when it holds no events."""
    folder = Path(folder)
    events_path = folder / EVENTS_FILE
    if not events_path.is_file():
        return None
    try:
        events = read_events(events_path)
    except OSError:
        return None
    method, total, iteration = "", 0, 0
    best: Validation | None = None
    done: Done | None = None
    error: Error | None = None
    for event in events:
        if isinstance(event, Start):
            method, total = event.method or method, event.total_iterations or total
            done = error = None  # a resumed run starts again
        elif isinstance(event, Progress):
            iteration = max(iteration, event.iteration)
            total = event.total_iterations or total
        elif isinstance(event, Validation) and (best is None or event.best):
            best = event
        elif isinstance(event, Done):
            done = event
            iteration = max(iteration, event.iteration)
        elif isinstance(event, Error):
            error = event
    return RunSummary(
        folder=folder,
        method=method,
        state=_state(done, error),
        iteration=iteration,
        total_iterations=total,
        dice=_best_figure(done, best, "dice"),
        hd95_mm=_best_figure(done, best, "hd95_mm"),
        hc_mae_mm=_best_figure(done, best, "hc_mae_mm"),
        model_path=_model_path(folder, done),
        message=error.message if error else "",
    )


def _best_figure(done: Done | None, best: Validation | None, name: str) -> float | None:
    """A best validation figure: from the `done` event, else from the best validation seen."""
    value = getattr(done, f"best_{name}", None) if done is not None else None
    if value is None and best is not None:
        value = getattr(best, name)
    return value


def _state(done: Done | None, error: Error | None) -> str:
    if error is not None:
        return "failed"
    if done is None:
        return "incomplete"
    return "stopped" if done.stopped_early else "done"


def _model_path(folder: Path, done: Done | None) -> Path | None:
    if done is not None and done.onnx_path:
        path = Path(done.onnx_path)
        path = path if path.is_absolute() else folder / path
        if path.is_file():
            return path
    path = folder / MODEL_FILE
    return path if path.is_file() else None


def list_runs(runs_folder: str | Path) -> list[RunSummary]:
    """Summaries of the runs in `runs_folder`, newest first."""
    runs_folder = Path(runs_folder)
    if not runs_folder.is_dir():
        return []
    summaries = [summarise_run(child) for child in runs_folder.iterdir() if child.is_dir()]
    found = [s for s in summaries if s is not None]
    return sorted(found, key=lambda s: (s.folder / EVENTS_FILE).stat().st_mtime, reverse=True)
