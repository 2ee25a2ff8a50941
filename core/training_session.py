"""The Train tab's state without Qt: the settings form, the live run and the runs list's rows.

The tab (app/train_tab.py) draws this state and forwards the user's actions; everything here is
plain Python (no Qt, no torch), so it is tested without a window. The run itself is a child
`hc-studio train` process whose events `LiveRun.apply` folds into what the tab shows.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .events import Done, Error, Event, ImportProblemEvent, Progress, Start, Status, Validation
from .run_folder import DONE, FAILED, RUNNING, STOPPED, RunSummary
from .training_settings import DataSettings, TrainSettings, default_of, flags_of

# The window proposes a longer run than the command's default: a fine-tuning run from the tab
# is meant to be used, while the command's default suits a first try.
FORM_ITERATIONS = 2000
IGNORED_LOSSES = ("weight",)  # a ramp-up factor, not a loss


def _field(settings_type: type, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(settings_type) if f.name == name)


def _flag(settings_type: type, name: str) -> str:
    return flags_of(_field(settings_type, name))[0]


@dataclass
class TrainForm:
    """The values of the tab's settings form; defaults from the settings types."""

    labelled: str = ""
    unlabelled: str = ""
    method: str = default_of(_field(TrainSettings, "method"))
    labelled_fraction: float = default_of(_field(DataSettings, "labelled_fraction"))
    iterations: int = FORM_ITERATIONS
    batch_size: int = default_of(_field(TrainSettings, "batch_size"))
    image_size: tuple[int, int] = default_of(_field(TrainSettings, "image_size"))
    device: str = "auto"
    init_weights: Path | None = None

    def problem(self) -> str | None:
        """Why a run cannot start with these values, or None."""
        if not self.labelled.strip() or not Path(self.labelled.strip()).is_dir():
            return "Choose the folder of labelled frames first."
        unlabelled = self.unlabelled.strip()
        if unlabelled and not Path(unlabelled).is_dir():
            return f"{Path(unlabelled).name}: the unlabelled folder is not a folder"
        return None

    def settings(self) -> tuple[TrainSettings, DataSettings]:
        """The run's settings and data as the form gives them."""
        settings = TrainSettings(
            method=self.method,
            iterations=self.iterations,
            batch_size=self.batch_size,
            image_size=tuple(self.image_size),
        )
        unlabelled = self.unlabelled.strip()
        data = DataSettings(
            labelled_dir=Path(self.labelled.strip()),
            unlabelled_dir=Path(unlabelled) if unlabelled else None,
            labelled_fraction=self.labelled_fraction,
        )
        return settings, data

    def arguments(self, run_dir: str | Path) -> list[str]:
        """The `hc-studio train` options of a new run with these values (flags from settings)."""
        settings, data = self.settings()
        arguments = [
            _flag(DataSettings, "labelled_dir"), str(data.labelled_dir),
            _flag(TrainSettings, "method"), settings.method,
            _flag(DataSettings, "labelled_fraction"), f"{data.labelled_fraction:g}",
            _flag(TrainSettings, "iterations"), str(settings.iterations),
            _flag(TrainSettings, "batch_size"), str(settings.batch_size),
            _flag(TrainSettings, "image_size"), *(str(v) for v in settings.image_size),
            "--device", self.device,
            "--out", str(run_dir),
        ]  # fmt: skip
        if data.unlabelled_dir is not None:
            arguments += [_flag(DataSettings, "unlabelled_dir"), str(data.unlabelled_dir)]
        if self.init_weights is not None:
            arguments += ["--init", str(self.init_weights)]
        return arguments


def resume_arguments(folder: str | Path, device: str) -> list[str]:
    """The `hc-studio train` options that continue a run (its settings come from run.json)."""
    return ["--out", str(folder), "--resume", "--device", device]


def new_run_dir(runs_folder: str | Path, name: str, method: str, now: float | None = None) -> Path:
    """A new folder under `runs_folder`: `name` (or time and method), made safe and unique."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    name = name.strip() or f"{stamp}-{method}"
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    runs_folder = Path(runs_folder)
    folder, suffix = runs_folder / name, 2
    while folder.exists():
        folder, suffix = runs_folder / f"{name}-{suffix}", suffix + 1
    return folder


# ---------------------------------------------------------------- words and figures


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def short_path(path: Path, keep: int = 2) -> str:
    """The last `keep` parts of a path, after "…/" when parts are left out."""
    parts = Path(path).parts
    return str(Path(path)) if len(parts) <= keep + 1 else "…/" + "/".join(parts[-keep:])


def figure(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


RUN_COLUMNS = ("Run", "Method", "State", "Iterations", "Dice", "HD95 (mm)", "HC error (mm)")


def run_row(run: RunSummary, running: bool = False) -> list[str]:
    """The runs list's cells for one run (`running`: it is the live run)."""
    iterations = f"{run.iteration} / {run.total_iterations}" if run.total_iterations else ""
    return [
        run.name,
        run.method,
        RUNNING if running else run.state,
        iterations,
        figure(run.dice, 4),
        figure(run.hd95_mm, 2),
        figure(run.hc_mae_mm, 2),
    ]


def import_summary(which: str, result) -> str:
    """One line about an imported data folder (`core.dataset`'s result, labelled or not)."""
    if which == "labelled":
        patients = len({pair.patient for pair in result.pairs})
        calibrated = sum(pair.spacing.calibrated for pair in result.pairs)
        return (
            f"{result.layout} layout: {len(result.pairs)} labelled frames of {patients} "
            f"patients, {calibrated} with a pixel size"
        )
    files = len({frame.image_path for frame in result.unlabelled})
    return f"{len(result.unlabelled)} frames in {files} files"


def describe_device_probe(output: str) -> tuple[str, str | None]:
    """(words for the device label, CUDA device name or None) from the CUDA probe's output."""
    lines = output.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    if answer.get("cuda"):
        name = str(answer.get("name") or "GPU")
        return f"CUDA available: {name}", name
    if "cuda" in answer:
        return "No CUDA GPU found: training runs on the CPU", None
    return "PyTorch is not installed: training is not available", None


def finished_state(run_state: str, exit_code: int) -> tuple[str, str | None]:
    """(final state, message to show or None) when the training process has ended."""
    if run_state:
        return run_state, None
    if exit_code == 0:
        return STOPPED, None
    return FAILED, f"The training process ended with code {exit_code}: see the log"


# ---------------------------------------------------------------- the live run


@dataclass
class LiveRun:
    """What the tab shows of one run, folded from its events (live or replayed)."""

    folder: Path | None = None
    method: str = ""
    state: str = ""  # "" while going, then DONE, STOPPED or FAILED
    iteration: int = 0
    start_iteration: int = 0
    total_iterations: int = 0
    headline: str = "No run going."
    eta_text: str = ""
    losses: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    validation: list[tuple[int, float | None, float | None]] = field(default_factory=list)
    error: str | None = None
    import_problems: list[str] = field(default_factory=list)

    def apply(self, event: Event) -> None:
        """Fold one event into the state."""
        if isinstance(event, Start):
            self.method, self.state = event.method, ""
            self.total_iterations = event.total_iterations
            self.iteration = self.start_iteration = event.start_iteration
            counts = ", ".join(f"{v} {k}" for k, v in event.counts.items())
            self.headline = f"{event.method}: {counts}" if counts else event.method
        elif isinstance(event, Status):
            self.headline = event.message
        elif isinstance(event, Progress):
            self._progress(event)
        elif isinstance(event, Validation):
            self.validation.append((event.iteration, event.dice, event.hc_mae_mm))
        elif isinstance(event, Done):
            self._done(event)
        elif isinstance(event, Error):
            self.state, self.error = FAILED, event.message
            self.headline = f"Failed: {event.message}"
        elif isinstance(event, ImportProblemEvent):
            self.import_problems.append(f"{Path(event.path).name}: {event.problem}")

    def _progress(self, event: Progress) -> None:
        self.total_iterations = max(1, event.total_iterations)
        self.iteration = min(event.iteration, self.total_iterations)
        for name, value in event.losses.items():
            if value is None or not math.isfinite(value) or name in IGNORED_LOSSES:
                continue
            xs, ys = self.losses.setdefault(name, ([], []))
            xs.append(event.iteration)
            ys.append(value)
        speed = f", {event.images_per_s:.1f} images/s" if event.images_per_s else ""
        self.eta_text = f"ETA {format_duration(event.eta_s)}{speed}"
        stage = " (warm-up)" if event.stage == "warmup" else ""
        self.headline = f"Iteration {event.iteration} of {self.total_iterations}{stage}"

    def _done(self, event: Done) -> None:
        self.state = STOPPED if event.stopped_early else DONE
        self.iteration = event.iteration if event.stopped_early else self.total_iterations
        self.eta_text = ""
        dice, hc_error = figure(event.best_dice, 4), figure(event.best_hc_mae_mm, 2)
        figures = f"best Dice {dice or '–'}, HC error {hc_error or '–'} mm"
        word = "Stopped" if event.stopped_early else "Done"
        self.headline = f"{word} at iteration {event.iteration}: {figures}"

    def replay(self, events: Sequence[Event]) -> None:
        for event in events:
            self.apply(event)

    def summary(self) -> RunSummary:
        """The live run as a row of the runs list (before its events file is there)."""
        return RunSummary(
            folder=self.folder or Path(),
            method=self.method,
            state=RUNNING,
            iteration=self.iteration,
            total_iterations=self.total_iterations,
            dice=None,
            hd95_mm=None,
            hc_mae_mm=None,
            model_path=None,
        )
