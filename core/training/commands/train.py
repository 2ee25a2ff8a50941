"""`hc-studio train`: semi-supervised training with JSON-lines events on stdout.

stdout carries only events, one JSON object per line (flushed), the same lines being appended to
RUN_DIR/events.jsonl; human-readable text goes to stderr. Exit code 0 when the run ends (also
after a requested stop: `done` has stopped_early=true), 1 after an `error` event.

Stop cleanly (checkpoint, ONNX export, `done`): a line `{"cmd": "stop"}` on stdin; closing
stdin when it is a pipe (the parent went away); SIGTERM; SIGINT. `--no-stdin` ignores stdin.

`--resume` continues RUN_DIR from its last checkpoint with the settings and data it was started
with (RUN_DIR/run.json); the result equals that of an uninterrupted run.

Multi-process: `torchrun --nproc-per-node K -m hc_studio.core.cli train ...` (gloo on CPU, NCCL
on GPU); each process draws its own share of every batch, rank 0 validates and writes events.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from ...commands.common import say
from ...events import Event, EventWriter, ImportProblemEvent, Progress, Start, Status
from ..methods import REGISTRY
from .arguments import add_image_size_argument

HELP = "train a segmentation model (semi-supervised) on labelled and unlabelled frames"
RUN_FILE = "run.json"
EXIT_OK, EXIT_ERROR = 0, 1
HUMAN_PROGRESS_INTERVAL_S = 10.0
# ERSR ablation switches: flag -> method Config field set to false.
ABLATION_FLAGS = {
    "no_filter": "use_filter",
    "no_ellipse_refine": "use_ellipse_refine",
    "no_symmetry": "use_symmetry",
}


def _fraction(low_open: bool):
    def parse(text: str) -> float:
        value = float(text)
        ok = (0 < value <= 1) if low_open else (0 <= value < 1)
        if not ok:
            raise argparse.ArgumentTypeError(f"out of range: {text}")
        return value

    return parse


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.strip(), value.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument(
        "--labeled",
        "--labelled",
        type=Path,
        metavar="DIR",
        help="labelled folder (HC18 layout or images/ + masks/)",
    )
    data.add_argument(
        "--unlabeled",
        "--unlabelled",
        type=Path,
        metavar="DIR",
        help="folder of unlabelled frames (stills, DICOM, video)",
    )
    val = data.add_mutually_exclusive_group()
    val.add_argument("--val", type=Path, metavar="DIR", help="labelled validation folder")
    val.add_argument(
        "--val-fraction",
        type=_fraction(False),
        default=0.2,
        metavar="F",
        help="share of the labelled patients held out for validation (default 0.2)",
    )
    data.add_argument(
        "--labeled-fraction",
        "--labelled-fraction",
        type=_fraction(True),
        default=1.0,
        metavar="F",
        help="keep this share of the training patients labelled; the others' "
        "frames join the unlabelled stream (default 1)",
    )
    data.add_argument(
        "--pixel-csv",
        type=Path,
        metavar="CSV",
        help="HC18-style 'filename,pixel size(mm)' CSV (found automatically "
        "beside the folder otherwise)",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--method",
        default="supervised",
        metavar="M",
        help="training method: " + ", ".join(REGISTRY) + " (default supervised)",
    )
    run.add_argument("--out", type=Path, metavar="RUN_DIR", help="run folder (required to train)")
    run.add_argument(
        "--list-methods",
        action="store_true",
        help="print the training methods with their one-line descriptions (JSON with --json)",
    )
    run.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    run.add_argument(
        "--resume", action="store_true", help="continue RUN_DIR from its last checkpoint"
    )
    run.add_argument(
        "--init",
        type=Path,
        metavar="ONNX_OR_CKPT",
        help="start from the weights of an HC Studio model or checkpoint",
    )
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument(
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help="CPU threads per process (default: 1 or all cores, whichever a quick "
        "probe finds faster)",
    )
    run.add_argument(
        "--no-stdin",
        action="store_true",
        help="ignore stdin (by default a stop line, or a closed stdin pipe, stops)",
    )
    run.add_argument("--stop-after", type=int, default=0, help=argparse.SUPPRESS)
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--iterations", type=int, default=1000, metavar="N")
    optim.add_argument(
        "--batch-size",
        type=int,
        default=8,
        metavar="B",
        help="labelled frames per step and process (default 8)",
    )
    optim.add_argument(
        "--unlabeled-batch-size",
        type=int,
        default=0,
        metavar="B",
        help="unlabelled frames per step and process (default: --batch-size)",
    )
    add_image_size_argument(optim)
    optim.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    optim.add_argument("--lr", type=float, default=0.01, help="base learning rate (poly decay)")
    optim.add_argument(
        "--warmup-iterations",
        type=int,
        default=0,
        metavar="N",
        help="supervised-only steps before the method's own loss",
    )
    optim.add_argument(
        "--rampup-fraction",
        type=float,
        default=0.33,
        metavar="F",
        help="consistency ramp-up length as a share of the steps after warm-up",
    )
    optim.add_argument(
        "--consistency", type=float, default=0.1, help="maximum weight of the unsupervised loss"
    )
    optim.add_argument("--ema-decay", type=float, default=0.99)
    optim.add_argument(
        "--val-every",
        type=int,
        default=0,
        metavar="N",
        help="validate and checkpoint every N steps (default: ~10 times a run)",
    )
    optim.add_argument("--no-augment", action="store_true")
    net = parser.add_argument_group("network")
    net.add_argument("--width", type=int, default=16, help="first-level channels (default 16)")
    net.add_argument("--norm", choices=("batch", "group"), default="batch")
    net.add_argument("--dilated-bottleneck", action="store_true")
    method = parser.add_argument_group("method options")
    method.add_argument(
        "--set",
        dest="method_options",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a field of the method's Config, e.g. --set noise_std=0.05",
    )
    method.add_argument("--no-filter", action="store_true", help="ERSR: no pseudo-label filter")
    method.add_argument(
        "--no-ellipse-refine",
        action="store_true",
        help="ERSR: no ellipse refinement of pseudo-labels",
    )
    method.add_argument("--no-symmetry", action="store_true", help="ERSR: no symmetry consistency")


# ---------------------------------------------------------------- settings


def settings_from_args(args: argparse.Namespace):
    from ..trainer import TrainSettings

    options = dict(args.method_options)
    for flag, config_field in ABLATION_FLAGS.items():
        if getattr(args, flag):
            options[config_field] = "false"
    return TrainSettings(
        method=args.method,
        iterations=args.iterations,
        batch_size=args.batch_size,
        unlabelled_batch_size=args.unlabeled_batch_size,
        image_size=tuple(args.image_size),
        optimizer=args.optimizer,
        lr=args.lr,
        warmup_iterations=args.warmup_iterations,
        rampup_fraction=args.rampup_fraction,
        consistency=args.consistency,
        ema_decay=args.ema_decay,
        seed=args.seed,
        val_every=args.val_every,
        width=args.width,
        norm=args.norm,
        dilated_bottleneck=args.dilated_bottleneck,
        augment=not args.no_augment,
        method_options=options,
        stop_after=args.stop_after,
    )


def data_options_from_args(args: argparse.Namespace):
    from ..data import DataOptions

    return DataOptions(
        labelled_dir=args.labeled,
        unlabelled_dir=args.unlabeled,
        val_dir=args.val,
        val_fraction=0.0 if args.val is not None else args.val_fraction,
        labelled_fraction=args.labeled_fraction,
        pixel_csv=args.pixel_csv,
        image_size=tuple(args.image_size),
        seed=args.seed,
    )


def _options_to_json(options) -> dict[str, Any]:
    return {
        k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
        for k, v in vars(options).items()
    }


def _options_from_json(data: dict[str, Any]):
    from ..data import DataOptions

    paths = ("labelled_dir", "unlabelled_dir", "val_dir", "pixel_csv")
    values = {k: (Path(v) if k in paths and v is not None else v) for k, v in data.items()}
    values["image_size"] = tuple(values["image_size"])
    return DataOptions(**values)


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


def _load_run_file(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RUN_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _write_run_file(run_dir: Path, settings, options) -> None:
    from ...atomic import atomic_write

    content = {"settings": settings.to_dict(), "data": _options_to_json(options)}
    with atomic_write(run_dir / RUN_FILE, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2)


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
    from ..threads import choose_threads

    threads_before = torch.get_num_threads()

    run_dir: Path = args.out
    use_cuda = _device(args.device) if args.device != "cpu" else False
    dist_info = init_distributed(use_cuda)
    writer = None
    if dist_info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        writer = EventWriter(run_dir / "events.jsonl", sys.stdout)
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
            torch.set_num_threads(choose_threads(args.threads, local_world))
        return _train(args, run_dir, device, dist_info, reporter, stop)
    except _known_errors() as error:
        reporter.emit(_error_event(str(error)))
        return EXIT_ERROR
    except Exception as error:  # noqa: BLE001 (a bug: report it, keep the traceback on stderr)
        traceback.print_exc(file=sys.stderr)
        reporter.emit(_error_event(f"internal error: {type(error).__name__}: {error}"))
        return EXIT_ERROR
    finally:
        torch.set_num_threads(threads_before)
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


def _resolve_run(args: argparse.Namespace, run_dir: Path):
    """(settings, data options, checkpoint or None) for a new or resumed run."""
    from ..checkpoint import load_checkpoint
    from ..methods import canonical_name

    last = run_dir / "checkpoints" / "last.pt"
    saved = _load_run_file(run_dir)
    if args.resume and saved is not None:
        from ..trainer import TrainSettings

        settings = TrainSettings.from_dict(saved["settings"])
        options = _options_from_json(saved["data"])
        checkpoint = load_checkpoint(last) if last.exists() else None
        return settings, options, checkpoint
    if last.exists() and not args.resume:
        raise _RunError(
            f"{run_dir.name} already holds a run: use --resume to continue it, or another --out"
        )
    if args.labeled is None:
        raise _RunError("--labeled DIR is required (unless resuming a run)")
    canonical_name(args.method)  # fail fast on an unknown method
    return settings_from_args(args), data_options_from_args(args), None


def _train(args, run_dir: Path, device, dist_info, reporter: _Reporter, stop) -> int:
    import torch

    from ..data import prepare_data
    from ..distributed import gather_objects
    from ..trainer import Trainer, build_method

    settings, options, checkpoint = _resolve_run(args, run_dir)
    if args.init is not None and checkpoint is None:
        settings = _with_init_architecture(settings, args.init)
    build_method(settings)  # check the method options before the (long) data preparation
    cache_path = run_dir / "cache.npz"

    def status(message: str) -> None:
        reporter.emit(Status(message=message))

    data, failure = None, None
    if dist_info.is_main:
        try:
            data = prepare_data(options, cache_path, status)
            _write_run_file(run_dir, settings, options)
        except Exception as error:  # noqa: BLE001 (re-raised below, after telling the others)
            failure = error
    all_ready = all(gather_objects(failure is None, dist_info))
    if failure is not None:
        raise failure
    if not all_ready:
        raise _RunError("preparing the data failed in the first process")
    if not dist_info.is_main:
        data = prepare_data(options, cache_path)  # rank 0 has written the cache: no decoding
    for problem in data.problems:
        reporter.emit(ImportProblemEvent(path=str(problem.path), problem=problem.problem))
    counts = data.counts()
    trainer = Trainer(
        settings,
        data,
        run_dir,
        reporter,
        stop,
        device,
        dist_info,
        data_description=_describe_data(options, counts),
    )
    if checkpoint is not None:
        trainer.restore(checkpoint)
    elif args.init is not None:
        trainer.load_weights(_init_weights(args.init)[1])
    reporter.emit(
        Start(
            method=trainer.settings.method,
            run_dir=str(run_dir),
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
    """Settings whose network matches the --init weights (width, norm, bottleneck)."""
    import dataclasses

    config, _ = _init_weights(path)
    return dataclasses.replace(
        settings,
        width=int(config["width"]),
        norm=config["norm"],
        dilated_bottleneck=bool(config["dilated_bottleneck"]),
    )
