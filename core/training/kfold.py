"""`train --adapt` judged by K-fold cross-validation, for clinics with few labelled frames.

A held-out share of 50 frames is 10 frames, and `compare` refuses to judge on fewer than
MIN_FRAMES: the verdict would mean nothing. So when the share would hold fewer (or `--folds K`
asks for it), the labelled frames are cut into K folds by patient (seeded); for each fold a
model is fine-tuned from the model in use on the other folds (plus the unlabelled frames) with
the run's own settings, and that fold's frames are scored by it and by the model in use. The
per-frame scores of all folds are pooled and judged by `core.comparison.compare_scores`, the
same paired bootstrap and verdict rule as `hc-studio compare`. Every labelled frame is thus
judged once, by a model that never saw it, neither to train nor to pick its checkpoint (the
fold runs have no validation frames: their last checkpoint is their model).

The run's own model (the one offered for promotion) is trained on all labelled frames. The
verdict judges the recipe (these settings, from this model in use) on these frames, the
standard reading of cross-validation; it costs K + 1 trainings.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path

from ..comparison import MIN_FRAMES, compare_scores, score_models, summarise_model
from ..events import Event, EventWriter, Fold, Progress, Status
from ..run_folder import RunFolder
from ..split import folds_by_patient, split_by_patient
from ..training_settings import DataSettings

DEFAULT_FOLDS = 5


def fold_count(text: str) -> int:
    """argparse type of `--folds`: an integer of at least 2."""
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"--folds needs at least 2 folds, got {text}")
    return value


def add_folds_argument(group) -> None:
    group.add_argument(
        "--folds",
        type=fold_count,
        metavar="K",
        help="With --adapt: judge by K-fold cross-validation (split by patient): K fine-tunes "
        "on K-1 folds each, every labelled frame judged once by a model that did not train on "
        "it, then the model itself on all labelled frames: K + 1 trainings, so K + 1 times the "
        f"time of one (default: {DEFAULT_FOLDS} folds when the --val-fraction share would "
        f"hold out fewer than {MIN_FRAMES} frames, else the single held-out share).",
    )


def plan_folds(
    args: argparse.Namespace, data: DataSettings, seed: int, say: Callable[[str], None]
) -> list[tuple[str, ...]] | None:
    """The folds' image names when this adapt run is judged by cross-validation, else None.

    Cross-validation when `--folds K` is given, or when the validation share of the labelled
    frames (split as the trainer splits them) would hold fewer than MIN_FRAMES frames; never
    with a `--val` folder (its frames are the judgement) nor on resume.
    """
    from ..dataset import import_labelled_folder

    folds = getattr(args, "folds", None)
    if not getattr(args, "adapt", False) or args.resume or data.labelled_dir is None:
        return None
    if data.val_dir is not None:
        if folds is not None:
            raise ValueError("--folds and --val: judge on the --val folder or by folds, not both")
        return None
    imported = import_labelled_folder(
        data.labelled_dir, data.pixel_csv, None, False, mask_label=data.mask_label
    )
    if folds is None:
        _, held = split_by_patient(imported.pairs, data.val_fraction, seed)
        if len(held) >= MIN_FRAMES:
            return None
        folds = DEFAULT_FOLDS
        say(
            f"a {data.val_fraction:g} share holds out {len(held)} frames, under the {MIN_FRAMES} "
            f"a verdict needs: judging by {folds}-fold cross-validation ({folds + 1} trainings)"
        )
    groups = folds_by_patient(imported.pairs, folds, seed)
    return [tuple(pair.image_path.name for pair in group) for group in groups]


def final_data(data: DataSettings) -> DataSettings:
    """The run's own data settings under cross-validation: every labelled frame trains it."""
    return dataclasses.replace(data, val_fraction=0.0)


class _FoldEvents:
    """A fold run's events: all into the fold's own events.jsonl; progress and status also to
    the run's stream, so the Train tab moves during the folds (a fold's `done` does not go
    there: the run is not finished)."""

    def __init__(self, folder: RunFolder, main) -> None:
        self.writer = EventWriter(folder.events_file, None)
        self.main = main

    def emit(self, event: Event) -> None:
        self.writer.emit(event)
        if isinstance(event, Progress | Status):
            self.main.emit(event)

    def status(self, message: str) -> None:
        self.emit(Status(message=message))

    def close(self) -> None:
        self.writer.close()


def judge_by_folds(
    folds: list[tuple[str, ...]],
    folder: RunFolder,
    candidate: Path,
    settings,
    options,
    init: Path,
    init_weights: dict,
    device,
    dist_info,
    reporter,
    stop,
) -> dict | None:
    """Train, score and pool the folds; writes and returns the report (None when stopped).

    `candidate`: the run's own model (trained on all labelled frames), named in the report;
    `options`: the run's DataOptions; `init_weights`: the state dict of the model in use.
    """
    from .adapt import write_report
    from .data import prepare_data
    from .trainer import Trainer

    def status(message: str) -> None:
        reporter.emit(Status(message=message))

    k = len(folds)
    pooled: dict[str, list] = {"candidate": [], "current": []}
    per_fold = []
    for number, names in enumerate(folds, start=1):
        reporter.emit(Fold(fold=number, folds=k, stage="training", frames=len(names)))
        fold_folder = folder.fold(number)
        fold_folder.path.mkdir(parents=True, exist_ok=True)
        fold_options = dataclasses.replace(options, val_dir=None, val_fraction=0.0, exclude=names)
        events = _FoldEvents(fold_folder, reporter)
        try:
            data = prepare_data(fold_options, fold_folder.cache_file, events.status)
            trainer = Trainer(
                settings,
                data,
                fold_folder.path,
                events,
                stop,
                device,
                dist_info,
                data_description=f"fold {number}/{k}: {len(names)} frames left out",
            )
            trainer.load_weights(init_weights)
            done = trainer.run()
            events.emit(done)
        finally:
            events.close()
        if stop.requested or done.onnx_path is None:
            status(f"stopped in fold {number}/{k}: no verdict")
            return None
        status(f"fold {number}/{k}: scoring its {len(names)} frames with both models")
        scores, _ = score_models(
            {"candidate": Path(done.onnx_path), "current": init},
            options.labelled_dir,
            pixel_csv=options.pixel_csv,
            mask_label=options.mask_label,
            device="cuda" if device.type == "cuda" else "cpu",
            only=names,
        )
        for role in pooled:
            pooled[role] += scores[role]
        figures = {
            "fold": number,
            "frames": len(scores["candidate"]),
            "files": [s.file for s in scores["candidate"]],
            "model": done.onnx_path,
            "candidate": summarise_model(scores["candidate"]),
            "current": summarise_model(scores["current"]),
        }
        per_fold.append(figures)
        reporter.emit(
            Fold(
                fold=number,
                folds=k,
                stage="scored",
                frames=figures["frames"],
                dice_candidate=figures["candidate"]["dice"]["mean"],
                dice_current=figures["current"]["dice"]["mean"],
            )
        )
    report = compare_scores(pooled["candidate"], pooled["current"])
    report["judged_by"] = f"{k}-fold cross-validation"
    report["folds"] = per_fold
    report["candidate_model"] = str(candidate)
    report["current_model"] = str(init)
    report["import_problems"] = []
    return write_report(folder.path, report, status)
