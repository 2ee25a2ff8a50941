"""`hc-studio train`: semi-supervised training with JSON-lines events on stdout.

stdout carries only events, one JSON object per line (flushed), the same lines being appended to
RUN_DIR/events.jsonl; human-readable text goes to stderr. Exit code 0 when the run ends (also
after a requested stop: `done` has stopped_early=true), 1 after an `error` event.

Stop cleanly (checkpoint, ONNX export, `done`): a line `{"cmd": "stop"}` on stdin; closing
stdin when it is a pipe (the parent went away); SIGTERM; SIGINT. `--no-stdin` ignores stdin.

`--resume` continues RUN_DIR from its last checkpoint with the settings and data it was started
with (RUN_DIR/run.json); the result equals that of an uninterrupted run. A setting given again
with `--resume` must equal the saved one, except those in CHANGEABLE_ON_RESUME (applied).

The options are derived from `core.training_settings` (each default is written there once).

Multi-process: `torchrun --nproc-per-node K -m hc_studio.core.cli train ...` (gloo on CPU, NCCL
on GPU); each process draws its own share of every batch, rank 0 validates and writes events.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from ...commands.common import say
from ...events import Event, EventWriter, ImportProblemEvent, Progress, Start, Status
from ...run_folder import RunFolder, SavedRun
from ...training_settings import (
    DataSettings,
    TrainSettings,
    add_settings_arguments,
    differences,
    flags_of,
    given_values,
    settings_from_args,
)
from ..adapt import EXIT_WORSE, add_adapt_argument, judge, resolve_init
from ..kfold import add_folds_argument, final_data, judge_by_folds, plan_folds

HELP = "train a segmentation model (semi-supervised) on labelled and unlabelled frames"
EXIT_OK, EXIT_ERROR = 0, 1
HUMAN_PROGRESS_INTERVAL_S = 10.0
# Settings a resumed run takes from the command line; any other setting given with --resume must
# equal the saved one. More (or fewer, but not below the checkpoint's) iterations stretch the
# learning-rate decay and the ramp-up to the new total from the checkpoint on, so the result is
# not that of an uninterrupted run of the new length; the others change no weight.
CHANGEABLE_ON_RESUME = ("iterations", "val_every", "keep_snapshots", "stop_after")
DEVICE_CHOICES = ("auto", "cpu", "cuda")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    groups = {
        name: parser.add_argument_group(name)
        for name in ("data", "run", "optimisation", "network", "method options")
    }
    add_settings_arguments(parser, DataSettings, groups)
    add_settings_arguments(parser, TrainSettings, groups)
    run = groups["run"]
    run.add_argument(
        "--out", type=Path, metavar="RUN_DIR", help="Run folder (required to train; no default)."
    )
    run.add_argument(
        "--list-methods",
        action="store_true",
        help="Print the training methods with their one-line descriptions and exit "
        "(JSON with --json; default off).",
    )
    run.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    run.add_argument(
        "--resume",
        action="store_true",
        help="Continue RUN_DIR from its last checkpoint with its saved settings; of the "
        "settings only --iterations, --val-every may differ (default off).",
    )
    run.add_argument(
        "--init",
        type=Path,
        metavar="ONNX_OR_CKPT",
        help="Start from the weights of an HC Studio model or checkpoint (default: random).",
    )
    add_adapt_argument(run)
    add_folds_argument(run)
    run.add_argument(
        "--device",
        choices=DEVICE_CHOICES,
        default="auto",
        help="Where to train; auto takes a CUDA GPU when there is one (default auto).",
    )
    run.add_argument(
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help="CPU threads per process (default 0: 1 or all cores, whichever a quick probe "
        "finds faster).",
    )
    run.add_argument(
        "--no-stdin",
        action="store_true",
        help="Ignore stdin; otherwise a stop line, or a closed stdin pipe, stops (default off).",
    )


# ---------------------------------------------------------------- settings


def data_options(data: DataSettings, settings: TrainSettings):
    """The data loader's options for `data`, read at the settings' image size and seed."""
    from ..data import DataOptions

    return DataOptions(
        labelled_dir=data.labelled_dir,
        unlabelled_dir=data.unlabelled_dir,
        val_dir=data.val_dir,
        val_fraction=0.0 if data.val_dir is not None else data.val_fraction,
        labelled_fraction=data.labelled_fraction,
        pixel_csv=data.pixel_csv,
        mask_label=data.mask_label,
        image_size=tuple(settings.image_size),
        seed=settings.seed,
    )


def _options_to_json(options) -> dict[str, Any]:
    return {
        k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
        for k, v in vars(options).items()
    }


def resumed_settings(
    saved: SavedRun, args: argparse.Namespace, run_file: Path
) -> tuple[TrainSettings, DataSettings]:
    """The saved settings with the changes a resume allows; _RunError names any other change."""
    from ..methods import canonical_name

    wanted = given_values(TrainSettings, args)
    if "method" in wanted:
        wanted["method"] = canonical_name(wanted["method"])
    saved_settings = dataclasses.replace(
        saved.settings, method=canonical_name(saved.settings.method)
    )
    options = wanted.pop("method_options", {})
    refused = [d for d in differences(saved_settings, wanted) if d[0] not in CHANGEABLE_ON_RESUME]
    refused += [
        (f"method_options[{key}]", saved_settings.method_options.get(key), value)
        for key, value in options.items()
        if saved_settings.method_options.get(key) != value
    ]
    refused += list(differences(saved.data, given_values(DataSettings, args)))
    if refused:
        changes = "; ".join(
            f"{_flag(name)} is {_shown(old)} in {run_file.name}, {_shown(new)} was given"
            for name, old, new in refused
        )
        raise _RunError(
            f"--resume continues a run with its saved settings: {changes}. Start a new run "
            "(another --out) to change them"
        )
    allowed = {k: v for k, v in wanted.items() if k in CHANGEABLE_ON_RESUME}
    return dataclasses.replace(saved_settings, **allowed), saved.data


def _flag(name: str) -> str:
    if name.startswith("method_options["):
        return "--set " + name[len("method_options[") : -1]
    for settings_type in (TrainSettings, DataSettings):
        for item in dataclasses.fields(settings_type):
            if item.name == name:
                return flags_of(item)[0]
    return name


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return "none" if value is None else str(value)


def _describe_data(options, counts: dict[str, int]) -> str:
    text = f"{options.labelled_dir.name}: {counts['labelled']} labelled"
    if counts["unlabelled"]:
        text += f", {counts['unlabelled']} unlabelled"
    return text + f" frames; {counts['validation']} validation frames"


# ---------------------------------------------------------------- events for humans


class _Reporter:
    """Emits events (stdout + events.jsonl on rank 0) and a human line on stderr for some."""

    def __init__(self, writer: EventWriter | None) -> None:
        self.writer = writer
        self._last_human_progress = 0.0

    def emit(self, event: Event) -> None:
        if self.writer is None:
            return
        self.writer.emit(event)
        line = self._human(event)
        if line:
            say(line)

    def _human(self, event: Event) -> str | None:
        import time

        if isinstance(event, Progress):
            if time.monotonic() - self._last_human_progress < HUMAN_PROGRESS_INTERVAL_S:
                return None
            self._last_human_progress = time.monotonic()
            losses = " ".join(f"{k}={v:.4g}" for k, v in event.losses.items() if v is not None)
            rate = f" {event.images_per_s:.1f} img/s" if event.images_per_s else ""
            return f"iteration {event.iteration}/{event.total_iterations} {losses}{rate}"
        data = event.to_dict()
        data.pop("time", None)
        kind = data.pop("event")
        if kind in ("start", "checkpoint"):
            return None
        if kind in ("status", "error"):
            return data["message"] if kind == "status" else f"error: {data['message']}"
        return f"{kind}: " + ", ".join(f"{k}={v}" for k, v in data.items() if v is not None)


# ---------------------------------------------------------------- run


class _RunError(Exception):
    """A problem to report as an `error` event; str() is the message."""


def _device(choice: str):
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise _RunError("--device cuda: no CUDA device is available")
    use_cuda = choice == "cuda" or (choice == "auto" and torch.cuda.is_available())
    return use_cuda


def list_methods(as_json: bool) -> int:
    """Print the registered methods; needs no torch (the registry is torch-free)."""
    from ..methods import REGISTRY

    if as_json:
        entries = [{"name": n, "description": e.description} for n, e in REGISTRY.items()]
        print(json.dumps(entries), flush=True)
    else:
        for name, entry in REGISTRY.items():
            print(f"{name:18s} {entry.description}", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list_methods:
        return list_methods(args.json)
    if args.out is None:
        say("hc-studio train: error: --out RUN_DIR is required")
        return 2
    import torch

    from ..distributed import init_distributed, shutdown
    from ..stopping import StopSignal
    from ..threads import end_cpu_training, start_cpu_training

    threads_before = torch.get_num_threads()

    folder = RunFolder(args.out)
    use_cuda = _device(args.device) if args.device != "cpu" else False
    dist_info = init_distributed(use_cuda)
    writer = None
    if dist_info.is_main:
        folder.path.mkdir(parents=True, exist_ok=True)
        writer = EventWriter(folder.events_file, sys.stdout)
    reporter = _Reporter(writer)
    stop = StopSignal()
    restore_signal_handlers = stop.install_signal_handlers()
    if dist_info.is_main and not args.no_stdin:
        stop.watch_stdin()
    try:
        if use_cuda:
            device = torch.device("cuda", dist_info.local_rank)
        else:
            device = torch.device("cpu")
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", dist_info.world_size))
            start_cpu_training(args.threads, local_world)
        return _train(args, folder, device, dist_info, reporter, stop)
    except _known_errors() as error:
        reporter.emit(_error_event(str(error)))
        return EXIT_ERROR
    except Exception as error:  # noqa: BLE001 (a bug: report it, keep the traceback on stderr)
        traceback.print_exc(file=sys.stderr)
        reporter.emit(_error_event(f"internal error: {type(error).__name__}: {error}"))
        return EXIT_ERROR
    finally:
        end_cpu_training(threads_before)
        restore_signal_handlers()
        if writer is not None:
            writer.close()
        shutdown(dist_info)


def _error_event(message: str) -> Event:
    from ...events import Error

    return Error(message=message)


def _known_errors() -> tuple[type[BaseException], ...]:
    from ...dataset import DatasetLayoutError
    from ..checkpoint import CheckpointError
    from ..data import NoLabelledDataError
    from ..export_onnx import ExportParityError
    from ..trainer import TrainingError

    return (
        _RunError,
        DatasetLayoutError,
        NoLabelledDataError,
        CheckpointError,
        ExportParityError,
        TrainingError,
        ValueError,
        FileNotFoundError,
    )


def _resolve_run(args: argparse.Namespace, folder: RunFolder):
    """(settings, data, checkpoint or None) for a new or resumed run."""
    from ..checkpoint import load_checkpoint
    from ..methods import canonical_name

    saved = folder.read_run_file() if args.resume else None
    if saved is not None:
        settings, data = resumed_settings(saved, args, folder.run_file)
        checkpoint = None
        if folder.last_checkpoint.exists():
            if args.init is not None:
                raise _RunError(
                    "--init with --resume: a resumed run continues from its own checkpoint"
                )
            checkpoint = load_checkpoint(folder.last_checkpoint)
            done = int(checkpoint["iteration"])
            if settings.iterations < done:
                raise _RunError(
                    f"--iterations {settings.iterations}: the run is already at iteration {done}"
                )
        return settings, data, checkpoint
    if folder.last_checkpoint.exists() and not args.resume:
        raise _RunError(
            f"{folder.name} already holds a run: use --resume to continue it, or another --out"
        )
    data = settings_from_args(DataSettings, args)
    if data.labelled_dir is None:
        raise _RunError("--labeled DIR is required (unless resuming a run)")
    settings = settings_from_args(TrainSettings, args)
    canonical_name(settings.method)  # fail fast on an unknown method
    return settings, data, None


def _train(args, folder: RunFolder, device, dist_info, reporter: _Reporter, stop) -> int:
    import torch

    from ..data import prepare_data
    from ..distributed import gather_objects
    from ..trainer import Trainer, build_method, network_config

    resolve_init(args)
    settings, data_settings, checkpoint = _resolve_run(args, folder)
    if args.init is not None and checkpoint is None:
        settings = _with_init_architecture(settings, args.init)
    build_method(settings)  # check the method options before the (long) data preparation
    network_config(settings)  # and that the network options fit together

    def status(message: str) -> None:
        reporter.emit(Status(message=message))

    folds = plan_folds(args, data_settings, settings.seed, status)
    if folds is not None and dist_info.world_size > 1:
        raise _RunError(
            "cross-validated judgement (--adapt with few labelled frames, or --folds) runs in "
            "one process: start it without torchrun, or give a --val folder"
        )
    fold_options = data_options(data_settings, settings)
    if folds is not None:
        data_settings = final_data(data_settings)  # the folds judge; the model trains on all
    options = data_options(data_settings, settings)

    data, failure = None, None
    if dist_info.is_main:
        try:
            data = prepare_data(options, folder.cache_file, status)
            folder.write_run_file(settings, data_settings)
        except Exception as error:  # noqa: BLE001 (re-raised below, after telling the others)
            failure = error
    all_ready = all(gather_objects(failure is None, dist_info))
    if failure is not None:
        raise failure
    if not all_ready:
        raise _RunError("preparing the data failed in the first process")
    if not dist_info.is_main:
        data = prepare_data(options, folder.cache_file)  # rank 0 has written the cache
    for problem in data.problems:
        reporter.emit(ImportProblemEvent(path=str(problem.path), problem=problem.problem))
    counts = data.counts()
    trainer = Trainer(
        settings,
        data,
        folder.path,
        reporter,
        stop,
        device,
        dist_info,
        data_description=_describe_data(options, counts),
        pretrained=checkpoint is None and args.init is None,
    )
    if checkpoint is not None:
        trainer.restore(checkpoint)
    elif args.init is not None:
        trainer.load_weights(_init_weights(args.init)[1])
    reporter.emit(
        Start(
            method=trainer.settings.method,
            run_dir=str(folder.path),
            total_iterations=settings.iterations,
            start_iteration=trainer.iteration,
            counts=counts,
            config={
                **settings.to_dict(),
                "data": _options_to_json(options),
                "device": str(device),
                "threads": torch.get_num_threads(),
                "processes": dist_info.world_size,
                "method_config": dict(vars(trainer.method.config)),
            },
        )
    )
    done = trainer.run()
    if stop.requested:
        say(f"stopping: {stop.reason}")
    reporter.emit(done)
    adapting = getattr(args, "adapt", False) and args.init is not None and done.onnx_path
    if adapting and not stop.requested and dist_info.is_main:
        if folds is None:
            report = judge(folder.path, Path(done.onnx_path), args.init, args.device, status)
        else:
            report = judge_by_folds(
                folds, folder, Path(done.onnx_path), settings, fold_options, args.init,
                _init_weights(args.init)[1], device, dist_info, reporter, stop,
            )  # fmt: skip
        if report is not None and report["verdict"] == "worse":
            return EXIT_WORSE
    return EXIT_OK


def _init_weights(path: Path):
    """(UNet config, state_dict) from an HC Studio ONNX model or training checkpoint."""
    from ..checkpoint import load_checkpoint
    from ..export_onnx import load_onnx_weights

    if path.suffix.lower() == ".onnx":
        return load_onnx_weights(path)
    state = load_checkpoint(path)
    return state["model"]["config"], state["model"]["state"]


def _with_init_architecture(settings, path: Path):
    """Settings whose network matches the --init weights (architecture and its options)."""
    import dataclasses

    from hc_studio.models.networks import EFFICIENTNET_LITE, network_kind

    config, _ = _init_weights(path)
    if network_kind(config) == EFFICIENTNET_LITE:
        return dataclasses.replace(
            settings,
            architecture=EFFICIENTNET_LITE,
            width=int(config["decoder_width"]),
            norm="batch",
            dilated_bottleneck=False,
            imagenet=False,  # the --init weights replace any starting encoder
        )
    return dataclasses.replace(
        settings,
        architecture="unet",
        width=int(config["width"]),
        norm=config["norm"],
        dilated_bottleneck=bool(config["dilated_bottleneck"]),
    )
