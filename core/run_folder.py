"""A training run on disk: the one place that knows a run folder's layout and summarises it.

    RUN_DIR/run.json           the settings and data the run was started with (`--resume` reads it)
    RUN_DIR/events.jsonl       every event of the run, one JSON line each (`core.events`)
    RUN_DIR/model.onnx         the exported model, once the run has ended
    RUN_DIR/checkpoints/       last.pt (latest) and best.pt (best validation Dice); with
                               `--keep-snapshots`, iter_N.pt of every validation as well
    RUN_DIR/cache.npz          the decoded frames, reused by a resumed run
    RUN_DIR/folds/fold-N/      with `train --adapt` judged by cross-validation: the run of fold
                               N (1-based), a run folder of its own

No torch and no Qt: the trainer writes runs, the GUI and the benchmarks read them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .events import Done, Error, Event, Fold, Progress, Start, Validation, read_events
from .training_settings import DataSettings, TrainSettings

RUN_FILE = "run.json"
EVENTS_FILE = "events.jsonl"
MODEL_FILE = "model.onnx"
CHECKPOINTS_FOLDER = "checkpoints"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
SNAPSHOT_PREFIX = "iter_"
CACHE_FILE = "cache.npz"
FOLDS_FOLDER = "folds"

# Run states, as the runs list shows them.
DONE, STOPPED, FAILED, INCOMPLETE, RUNNING, UNREADABLE = (
    "done",
    "stopped",
    "failed",
    "incomplete",
    "running",
    "unreadable",
)


class RunFileError(ValueError):
    """A run.json that cannot be used; str() names the file and the problem."""


@dataclass(frozen=True)
class SavedRun:
    """The content of run.json: the run's settings and its data (image size, seed inside)."""

    settings: TrainSettings
    data: DataSettings


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run folder (nothing is created until something is written)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    @property
    def events_file(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS_FOLDER

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / LAST_CHECKPOINT

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / BEST_CHECKPOINT

    def snapshot(self, iteration: int) -> Path:
        """The copy of the checkpoint saved at `iteration` (`--keep-snapshots`)."""
        return self.checkpoints / f"{SNAPSHOT_PREFIX}{iteration:06d}.pt"

    @property
    def cache_file(self) -> Path:
        return self.path / CACHE_FILE

    def fold(self, number: int) -> RunFolder:
        """The run folder of cross-validation fold `number` (1-based) inside this run."""
        return RunFolder(self.path / FOLDS_FOLDER / f"fold-{number}")

    @staticmethod
    def of_checkpoint(checkpoint: str | Path) -> RunFolder | None:
        """The run folder holding `checkpoint`, or None when it is not inside one."""
        parent = Path(checkpoint).parent
        return RunFolder(parent.parent) if parent.name == CHECKPOINTS_FOLDER else None

    # run.json -----------------------------------------------------------------------------------
    def read_run_file(self) -> SavedRun | None:
        """The saved settings, or None when there is no run.json; RunFileError if unusable."""
        path = self.run_file
        if not path.is_file():
            return None
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise RunFileError(f"{path}: cannot be read ({error})") from None
        except json.JSONDecodeError as error:
            raise RunFileError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(content, dict):
            raise RunFileError(f"{path}: not a run file (expected a JSON object)")
        for key in ("settings", "data"):
            if not isinstance(content.get(key), dict):
                raise RunFileError(f"{path}: not a run file (no '{key}' object)")
        try:
            return SavedRun(
                TrainSettings.from_dict(content["settings"]),
                DataSettings.from_dict(content["data"]),
            )
        except (TypeError, ValueError) as error:
            raise RunFileError(f"{path}: {error}") from None

    def write_run_file(self, settings: TrainSettings, data: DataSettings) -> None:
        """Write run.json atomically; "data" also carries the image size and seed it was read at."""
        from .atomic import atomic_write

        content = {
            "settings": settings.to_dict(),
            "data": {
                **data.to_dict(),
                "image_size": list(settings.image_size),
                "seed": settings.seed,
            },
        }
        with atomic_write(self.run_file, "w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=2)

    # summary ------------------------------------------------------------------------------------
    def summary(self) -> RunSummary | None:
        """What the runs list shows, or None when the folder holds no events (not a run)."""
        if not self.events_file.is_file():
            return None
        try:
            events = read_events(self.events_file)
            summary = summarise_events(self.path, events)
        except (OSError, UnicodeDecodeError, TypeError, ValueError) as error:
            return _unreadable(self.path, f"{self.events_file.name}: cannot be read ({error})")
        try:
            saved = self.read_run_file()
        except RunFileError as error:
            return _unreadable(self.path, str(error), summary)
        return summary if saved is not None else _replace(summary, has_settings=False)


@dataclass(frozen=True)
class RunSummary:
    """What the runs list shows for one run folder."""

    folder: Path
    method: str
    state: str  # DONE, STOPPED, FAILED, INCOMPLETE, RUNNING or UNREADABLE
    iteration: int
    total_iterations: int
    dice: float | None
    hd95_mm: float | None
    hc_mae_mm: float | None
    model_path: Path | None
    message: str = ""
    has_settings: bool = True  # run.json is there and readable (a resume needs it)
    # Every fold of `train --adapt`'s cross-validation was judged: the run's model (trained on
    # all labelled frames, so without validation figures) is judged by them instead.
    cross_validated: bool = False

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def validated(self) -> bool:
        """The run has held-out figures (a validation ran, or cross-validation judged it)."""
        return self.dice is not None or self.cross_validated

    @property
    def resumable(self) -> bool:
        return self.state in (STOPPED, INCOMPLETE, FAILED) and self.has_settings

    def refusal_to_use(self) -> str | None:
        """Why this run's model must not be used for measuring, or None when it may be."""
        if self.model_path is None:
            return f"{self.name} has no exported model ({MODEL_FILE})."
        if self.state != DONE:
            return (
                f"{self.name} did not finish (it is {self.state} at iteration "
                f"{self.iteration} of {self.total_iterations}): resume it to the end first."
            )
        if not self.validated:
            return (
                f"{self.name} has no validation figures: nothing shows how well its model "
                "measures. Train with validation frames (a held-out share or --val)."
            )
        return None


def summarise_events(folder: Path, events: Sequence[Event]) -> RunSummary:
    """The summary of a run from its events (the last `start` begins a resumed part)."""
    method, total, iteration = "", 0, 0
    best: Validation | None = None
    done: Done | None = None
    error: Error | None = None
    cross_validated = False
    for event in events:
        if isinstance(event, Start):
            method, total = event.method or method, event.total_iterations or total
            done = error = None  # a resumed run starts again
            cross_validated = False
        elif isinstance(event, Fold):
            cross_validated = event.stage == "scored" and event.fold == event.folds > 0
        elif isinstance(event, Progress):
            iteration = max(iteration, int(event.iteration))
            total = event.total_iterations or total
        elif isinstance(event, Validation) and (best is None or event.best):
            best = event
        elif isinstance(event, Done):
            done = event
            iteration = max(iteration, int(event.iteration))
        elif isinstance(event, Error):
            error = event
    return RunSummary(
        folder=folder,
        method=str(method),
        state=_state(done, error),
        iteration=iteration,
        total_iterations=int(total),
        dice=_best_figure(done, best, "dice"),
        hd95_mm=_best_figure(done, best, "hd95_mm"),
        hc_mae_mm=_best_figure(done, best, "hc_mae_mm"),
        model_path=_model_path(folder, done),
        message=str(error.message) if error else "",
        cross_validated=cross_validated,
    )


def summarise_run(folder: str | Path) -> RunSummary | None:
    """The summary of a run folder, or None when it holds no events."""
    return RunFolder(folder).summary()


def list_runs(runs_folder: str | Path) -> list[RunSummary]:
    """Summaries of the runs in `runs_folder`, newest first (unreadable ones included)."""
    runs_folder = Path(runs_folder)
    if not runs_folder.is_dir():
        return []
    found = []
    for child in runs_folder.iterdir():
        summary = RunFolder(child).summary() if child.is_dir() else None
        if summary is not None:
            found.append(summary)
    return sorted(found, key=_modified, reverse=True)


def _modified(summary: RunSummary) -> float:
    try:
        return (summary.folder / EVENTS_FILE).stat().st_mtime
    except OSError:
        return 0.0


def _unreadable(folder: Path, message: str, summary: RunSummary | None = None) -> RunSummary:
    return RunSummary(
        folder=folder,
        method=summary.method if summary else "",
        state=UNREADABLE,
        iteration=summary.iteration if summary else 0,
        total_iterations=summary.total_iterations if summary else 0,
        dice=None,
        hd95_mm=None,
        hc_mae_mm=None,
        model_path=None,
        message=message,
        has_settings=False,
    )


def _replace(summary: RunSummary, **changes: Any) -> RunSummary:
    import dataclasses

    return dataclasses.replace(summary, **changes)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _best_figure(done: Done | None, best: Validation | None, name: str) -> float | None:
    """A best validation figure: from the `done` event, else from the best validation seen."""
    value = _number(getattr(done, f"best_{name}", None)) if done is not None else None
    if value is None and best is not None:
        value = _number(getattr(best, name))
    return value


def _state(done: Done | None, error: Error | None) -> str:
    if error is not None:
        return FAILED
    if done is None:
        return INCOMPLETE
    return STOPPED if done.stopped_early else DONE


def _model_path(folder: Path, done: Done | None) -> Path | None:
    if done is not None and isinstance(done.onnx_path, str) and done.onnx_path:
        path = Path(done.onnx_path)
        path = path if path.is_absolute() else folder / path
        if path.is_file():
            return path
    path = folder / MODEL_FILE
    return path if path.is_file() else None
