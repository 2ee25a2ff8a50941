"""`hc-studio pretrain`: self-paced contrastive pretraining of the U-Net encoder.

Every frame under `--frames` (labelled folders too; annotation images are skipped) is used
without its label; patients and pixel-size bands are the meta-labels (see
`core.training.pretrain`). stdout carries JSON-lines events (`start`, `status`, `progress`,
`checkpoint`, `done`, or `error`), human-readable text goes to stderr. The encoder checkpoint is
written atomically to `--out`; `hc-studio train --init OUT` starts from it, and the `mn` and
`contrastive-meta` methods take it with `--set partner_init=OUT` / `--set encoder=OUT`.
Exit code 0 on success, 1 after an `error` event.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from types import SimpleNamespace

from ...commands.common import say
from ...events import Error, Event, EventWriter
from .arguments import add_image_size_argument, positive_int

HELP = "pretrain the U-Net encoder contrastively (patients and pixel sizes as positives)"
EXIT_OK, EXIT_ERROR = 0, 1


# The command-line defaults of PretrainSettings' fields; the help must not import torch (which
# core.training.pretrain does), so they are repeated here and a test keeps them equal.
DEFAULTS = SimpleNamespace(iterations=500, batch_size=16, width=16, lr=1e-3, seed=0)


def _defaults() -> SimpleNamespace:
    return DEFAULTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--frames",
        type=Path,
        nargs="+",
        required=True,
        metavar="DIR",
        help="Folders of frames (stills, DICOM, video; labelled folders too); required.",
    )
    parser.add_argument(
        "--pixel-csv",
        type=Path,
        metavar="CSV",
        help="HC18-style 'filename,pixel size(mm)' CSV (default: the CSV found beside each "
        "folder).",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="ENCODER.pt",
        help="The encoder checkpoint to write; required.",
    )
    defaults = _defaults()
    parser.add_argument(
        "--iterations",
        type=positive_int,
        default=defaults.iterations,
        metavar="N",
        help=f"Optimisation steps (default {defaults.iterations}).",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=defaults.batch_size,
        metavar="B",
        help=f"Frames per step (default {defaults.batch_size}).",
    )
    add_image_size_argument(parser)
    parser.add_argument(
        "--width",
        type=positive_int,
        default=defaults.width,
        help=f"Channels of the U-Net's first level (default {defaults.width}).",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=defaults.lr,
        help=f"Adam learning rate, decayed along a cosine (default {defaults.lr:g}).",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help=f"Seed of every random choice (default {defaults.seed}).",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="Where to train; auto takes a CUDA GPU when there is one (default auto).",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help="CPU threads (default 0: 1 or all cores, whichever a quick probe finds faster).",
    )


def _settings(args: argparse.Namespace):
    from ..pretrain import PretrainSettings

    return PretrainSettings(
        iterations=args.iterations,
        batch_size=args.batch_size,
        image_size=tuple(args.image_size),
        width=args.width,
        lr=args.lr,
        seed=args.seed,
    )


def _device(choice: str, threads: int):
    import torch

    from ..threads import start_cpu_training

    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    start_cpu_training(threads)
    return torch.device("cpu")


class _Reporter:
    """Events on stdout, and a line on stderr for the ones a person reads."""

    def __init__(self) -> None:
        self.writer = EventWriter(None, sys.stdout)

    def emit(self, event: Event) -> None:
        self.writer.emit(event)
        data = event.to_dict()
        kind = data["event"]
        if kind in ("status", "error"):
            say(data["message"] if kind == "status" else f"error: {data['message']}")
        elif kind == "import_problem":
            say(f"skipped {Path(data['path']).name}: {data['problem']}")
        elif kind == "done":
            say(f"encoder written to {data['last_checkpoint']}")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import CheckpointError
    from ..pretrain import PretrainError, pretrain
    from ..threads import end_cpu_training

    reporter = _Reporter()
    threads_before = torch.get_num_threads()
    try:
        device = _device(args.device, args.threads)
        done = pretrain(
            args.frames, args.out, _settings(args), device, reporter.emit, args.pixel_csv
        )
    except (PretrainError, CheckpointError, ValueError, OSError) as error:
        reporter.emit(Error(message=str(error)))
        return EXIT_ERROR
    except Exception as error:  # noqa: BLE001 (a bug: report it, keep the traceback on stderr)
        traceback.print_exc(file=sys.stderr)
        reporter.emit(Error(message=f"internal error: {type(error).__name__}: {error}"))
        return EXIT_ERROR
    finally:
        end_cpu_training(threads_before)
    reporter.emit(done)
    return EXIT_OK
