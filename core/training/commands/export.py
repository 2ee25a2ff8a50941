"""`hc-studio export CKPT --out MODEL.onnx`: a training checkpoint as one ONNX model file.

The file is self-contained (weights inside), takes `image` (N, 1, H, W) in 0..1 with H, W
multiples of 16 and returns `probability`; it carries the `hc_studio.*` metadata that
`hc-studio measure` and the GUI read. Every export is checked against torch in onnxruntime.
Prints the written path on stdout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ...commands.common import say

HELP = "Export a training checkpoint to an ONNX model (checked against torch)."
EXIT_OK, EXIT_ERROR = 0, 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        type=Path,
        metavar="CKPT",
        help="a checkpoint (RUN_DIR/checkpoints/best.pt or last.pt)",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="MODEL.onnx")
    parser.add_argument("--name", help="model name in the metadata (default: the run's folder)")


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import CheckpointError
    from ..export_onnx import ExportParityError, export_checkpoint

    try:
        path = export_checkpoint(args.checkpoint, args.out, name=args.name)
    except (CheckpointError, ExportParityError, OSError) as error:
        say(f"hc-studio export: error: {error}")
        return EXIT_ERROR
    say(f"wrote {path} (checked against torch in onnxruntime)")
    print(path, flush=True)
    return EXIT_OK
