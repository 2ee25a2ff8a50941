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

from .events import (
    Done,
    Error,
    Event,
    Fold,
    ImportProblemEvent,
    Progress,
    Start,
    Status,
    Validation,
)
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
    # Fine-tuning the model in use: the run ends with the comparison on its held-out frames
    # (`train --adapt`), so "Use this model" can show it without computing it again.
    adapt: bool = False

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
            if self.adapt and self.init_weights.suffix.lower() == ".onnx":
                arguments.append("--adapt")
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
    # (fold, folds) while `train --adapt` judges by cross-validation, after the run's own model
    fold: tuple[int, int] | None = None

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
        elif isinstance(event, Fold):
            self._fold(event)
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

    def _fold(self, event: Fold) -> None:
        self.fold = (event.fold, event.folds)
        if event.stage == "scored":
            dice = f"Dice {figure(event.dice_candidate, 4) or '–'}"
            dice += f" (model in use {figure(event.dice_current, 4) or '–'})"
            self.headline = (
                f"Fold {event.fold}/{event.folds} judged: {dice} on {event.frames} frames"
            )
        else:
            self.headline = (
                f"Fold {event.fold}/{event.folds}: training without its {event.frames} frames"
            )

    def _progress(self, event: Progress) -> None:
        self.total_iterations = max(1, event.total_iterations)
        self.iteration = min(event.iteration, self.total_iterations)
        for name, value in event.losses.items():
            if self.fold is not None:  # a fold's training: its losses are not the run's curve
                break
            if value is None or not math.isfinite(value) or name in IGNORED_LOSSES:
                continue
            xs, ys = self.losses.setdefault(name, ([], []))
            xs.append(event.iteration)
            ys.append(value)
        speed = f", {event.images_per_s:.1f} images/s" if event.images_per_s else ""
        self.eta_text = f"ETA {format_duration(event.eta_s)}{speed}"
        stage = " (warm-up)" if event.stage == "warmup" else ""
        self.headline = f"Iteration {event.iteration} of {self.total_iterations}{stage}"
        if self.fold is not None:
            self.headline = f"Fold {self.fold[0]}/{self.fold[1]}: {self.headline.lower()}"

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


# ---------------------------------------------------------------- promotion ("Use this model")


@dataclass(frozen=True)
class HeldOut:
    """The labelled frames a run did not train on: its --val folder, or its validation share
    of the labelled folder (`names`; None: every frame of `folder`)."""

    folder: Path
    names: frozenset[str] | None
    mask_label: int | None
    pixel_csv: Path | None
    data: dict


def held_out_frames(run_folder: str | Path) -> HeldOut:
    """The run's held-out frames, split as the trainer split them (same pairs, fraction, seed).

    Reads the labelled folder (no pixels kept): call it off the UI thread. Raises ValueError
    when the run has no settings or held no frames out.
    """
    from .dataset import import_labelled_folder
    from .run_folder import RunFolder
    from .split import split_by_patient

    saved = RunFolder(run_folder).read_run_file()
    if saved is None:
        raise ValueError(f"{Path(run_folder).name}: no run.json, so no held-out frames are known")
    data = saved.data
    described = data.to_dict()
    if data.val_dir is not None:
        return HeldOut(data.val_dir, None, data.mask_label, data.pixel_csv, described)
    if RunFolder(run_folder).fold(1).path.is_dir():
        raise ValueError(
            f"{Path(run_folder).name} trained on all its labelled frames and was judged by "
            "cross-validation against the model in use then; to judge it against another "
            "model, run `hc-studio compare` on a labelled folder it did not train on"
        )
    if data.labelled_dir is None or data.val_fraction <= 0:
        raise ValueError(f"{Path(run_folder).name} held no labelled frames out to judge it on")
    imported = import_labelled_folder(
        data.labelled_dir, data.pixel_csv, None, False, mask_label=data.mask_label
    )
    _, held = split_by_patient(imported.pairs, data.val_fraction, saved.settings.seed)
    names = frozenset(pair.image_path.name for pair in held)
    return HeldOut(data.labelled_dir, names, data.mask_label, data.pixel_csv, described)


COMPARISON_COLUMNS = ("Measure", "Model in use", "Candidate", "Difference [95% interval]")


def compare_on_held_out(
    run_folder: str | Path,
    candidate: Path,
    current: Path,
    device: str = "auto",
    held: HeldOut | None = None,
) -> tuple[dict, HeldOut]:
    """`core.comparison.compare_models` of the run's model (`candidate`) against the model it
    started from on the run's held-out frames (`held`, when already read); (report, the frames).
    Slow: off the UI thread."""
    from .comparison import compare_models

    held = held or held_out_frames(run_folder)
    report = compare_models(
        candidate,
        current,
        held.folder,
        pixel_csv=held.pixel_csv,
        mask_label=held.mask_label,
        device=device,
        only=held.names,
    )
    return report, held


def _cell(stats: dict | None, key: str = "mean", digits: int = 4) -> str:
    value = None if stats is None else stats.get(key)
    return "–" if value is None else f"{value:.{digits}f}"


def _interval(interval: dict | None, digits: int) -> str:
    if not interval or interval.get("mean") is None:
        return "–"
    mean, low, high = interval["mean"], interval["low"], interval["high"]
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def comparison_rows(report: dict) -> list[list[str]]:
    """The promotion table: one row per figure, the model in use beside the candidate."""
    current, candidate = report["current"], report["candidate"]
    difference = report["difference"]
    rows = [
        [
            "Frames judged",
            str(report["frames_scored"]),
            str(report["frames_scored"]),
            report.get("judged_by", ""),  # e.g. "5-fold cross-validation"
        ],
        [
            "Dice (mean)",
            _cell(current["dice"]),
            _cell(candidate["dice"]),
            _interval(difference["dice"], 4),
        ],
        ["Dice (median)", _cell(current["dice"], "median"), _cell(candidate["dice"], "median"), ""],
    ]
    if current["hd95_mm"]["n"] or candidate["hd95_mm"]["n"]:
        rows.append(
            [
                "HD95 (mm)",
                _cell(current["hd95_mm"], digits=2),
                _cell(candidate["hd95_mm"], digits=2),
                "",
            ]
        )
    if current["hc_abs_error_mm"]["n"] or candidate["hc_abs_error_mm"]["n"]:
        rows.append(
            [
                "HC error (mm)",
                _cell(current["hc_abs_error_mm"], digits=2),
                _cell(candidate["hc_abs_error_mm"], digits=2),
                _interval(difference["hc_abs_error_mm"], 2),
            ]
        )
        rows.append(
            [
                "HC bias [limits] (mm)",
                _agreement(current["hc_bland_altman"]),
                _agreement(candidate["hc_bland_altman"]),
                "",
            ]
        )
    rows.append(["Frames losing > 0.05 Dice", "", str(len(report["frames_worse"])), ""])
    return rows


def _agreement(agreement: dict | None) -> str:
    if not agreement:
        return "–"
    return f"{agreement['bias']:+.2f} [{agreement['lower']:+.2f}, {agreement['upper']:+.2f}]"


@dataclass(frozen=True)
class AgreementPlot:
    """A Bland-Altman plot's content: per series (name, means, differences, bias, lower, upper)."""

    title: str
    x_label: str
    y_label: str
    series: list[tuple[str, list[float], list[float], float, float, float]]


def agreement_plot(report: dict) -> AgreementPlot:
    """HC agreement with the reference for both models when the frames are calibrated; else
    the two models' Dice against each other (difference vs mean, per frame)."""
    series = []
    for role, name in (("current", "model in use"), ("candidate", "candidate")):
        agreement = report[role]["hc_bland_altman"]
        if agreement:
            series.append(
                (
                    name,
                    agreement["means"],
                    agreement["differences"],
                    agreement["bias"],
                    agreement["lower"],
                    agreement["upper"],
                )
            )
    if series:
        return AgreementPlot(
            "Bland-Altman: HC against the reference",
            "mean of measured and reference HC (mm)",
            "measured - reference (mm)",
            series,
        )
    from .comparison import bland_altman

    rows = [
        r
        for r in report["per_frame"]
        if r["dice_candidate"] is not None and r["dice_current"] is not None
    ]
    agreement = bland_altman([r["dice_candidate"] for r in rows], [r["dice_current"] for r in rows])
    if agreement:
        series.append(
            (
                "candidate - model in use",
                agreement["means"],
                agreement["differences"],
                agreement["bias"],
                agreement["lower"],
                agreement["upper"],
            )
        )
    return AgreementPlot(
        "Bland-Altman: Dice of the candidate against the model in use",
        "mean Dice of the two models",
        "candidate - model in use",
        series,
    )
