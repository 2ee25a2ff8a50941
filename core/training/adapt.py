"""`hc-studio train --adapt`: fine-tune the model in use on a clinic's frames, then judge it.

The adapt flow is an ordinary run with three differences:

- it starts from the model in use (`--init`; by default the installed model);
- it must hold labelled frames out (the validation share, by patient when patients are known,
  or a `--val` folder): the run trains on the rest; when the share would hold too few frames
  for a verdict, K-fold cross-validation judges instead (`core.training.kfold`) and the run
  trains on all labelled frames;
- when the run has finished, the new model is compared with the model it started from on those
  held-out frames (`core.comparison`, the same as `hc-studio compare`); the report is written to
  the run folder as `comparison.json`, its verdict is said, and the command exits with 3 when
  the new model is worse.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

COMPARISON_FILE = "comparison.json"
EXIT_WORSE = 3
# The adapt flow's defaults where the command line gives none, chosen by measurement on a new
# setting (50 labelled + 308 unlabelled PSFHS frames, docs/adaptation.md): for the same CPU
# time, supervised-only fine-tuning (700 steps of 4 frames, about 10 minutes of a 2-core CPU)
# beat ERSR and mean teacher, whose unlabelled branch makes each step 3 to 5 times dearer; of the
# SGD rates 0.003, 0.01 (train's default) and 0.03, 0.03 scored best on the 308 judged frames
# (+0.0031 Dice [+0.0023, +0.0039] over 0.01; 0.003: -0.0105).
ADAPT_DEFAULTS = {"method": "supervised", "iterations": 700, "batch_size": 4, "lr": 0.03}


def add_adapt_argument(group) -> None:
    group.add_argument(
        "--adapt",
        action="store_true",
        help="Adapt the model in use to a clinic: start from --init (default: the installed "
        "model), train, then compare the new model with it on the held-out labelled frames "
        "(comparison.json; exit code 3 when worse) (default off).",
    )


def resolve_init(args: argparse.Namespace) -> None:
    """With --adapt: the adapt defaults for what was not given, the installed model when no
    --init is given; checks that frames are held out."""
    if not getattr(args, "adapt", False) or args.resume:
        return
    for name, value in ADAPT_DEFAULTS.items():
        if not hasattr(args, name):  # not given (the settings options are left out then)
            setattr(args, name, value)
    if args.init is None:
        from ..inference import default_model_path

        args.init = default_model_path()
        if args.init is None:
            raise ValueError("--adapt: no model is installed; give the model in use with --init")
    if args.init.suffix.lower() != ".onnx":
        raise ValueError("--adapt: --init must be the ONNX model in use, to compare with it")
    if getattr(args, "val", None) is None and getattr(args, "val_fraction", 0.2) <= 0:
        raise ValueError("--adapt needs held-out frames: a --val-fraction above 0, or --val DIR")


def judge(
    run_folder: Path, candidate: Path, current: Path, device: str, say: Callable[[str], None]
) -> dict:
    """Compare the run's model with the model it started from on the run's held-out frames;
    writes `comparison.json` in the run folder and returns the report."""
    from ..training_session import compare_on_held_out, held_out_frames

    held = held_out_frames(run_folder)
    count = "every frame" if held.names is None else f"{len(held.names)} held-out frames"
    say(f"comparing the new model with {Path(current).name} on {count} of {held.folder.name}")
    report, _ = compare_on_held_out(
        run_folder, candidate, current, "cuda" if device == "cuda" else "cpu", held
    )
    return write_report(run_folder, report, say)


def write_report(run_folder: Path, report: dict, say: Callable[[str], None]) -> dict:
    """Write `report` as the run's `comparison.json` (atomically), say its summary, return it."""
    from ..atomic import atomic_write
    from ..commands.compare import summary_lines

    with atomic_write(Path(run_folder) / COMPARISON_FILE, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    if "judged_by" in report:
        say(f"judged by {report['judged_by']} on {report['frames_scored']} frames")
    for line in summary_lines(report):
        say(line)
    return report
