"""Keep a run's snapshots small: each network of a checkpoint as a checkpoint of its own, with its
weights in half precision (BatchNorm statistics kept in full).

A training checkpoint holds the student, the EMA teacher and the optimiser's state (about four
copies of the network: 61 MB at EfficientNet-Lite0 with 16 decoder channels); a slim one holds
one network at half its float32 size (7.8 MB there). The rounding changes each weight by at most
2^-11 of itself; `docs/benchmarks.md` 3z measures what it costs on validation. `hc-studio export`
reads a slim checkpoint like any other (the weights are cast back to float32 as they load).

    python benchmarks/slim_snapshots.py RUN/checkpoints/iter_000900.pt --out-dir SLIM \\
        --networks ema student
    hc-studio export SLIM/iter_000900-ema.pt --out iter_000900-ema.onnx
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from average_checkpoints import with_weights

NETWORKS = ("ema", "student")
# The checkpoint entries an export needs besides the network; the optimiser's state, the
# samplers' and the random streams' are left out (a slim checkpoint cannot be resumed).
KEPT = ("format", "version", "method", "iteration", "settings", "data")


def half_weights(state: Mapping[str, Any]) -> dict[str, Any]:
    """`state` with its floating tensors in half precision, except BatchNorm's running
    statistics (a variance can be far smaller than a weight, below half precision's range)."""
    return {
        name: value.half() if value.is_floating_point() and "running_" not in name else value
        for name, value in state.items()
    }


def slim_checkpoint(checkpoint: Mapping[str, Any], network: str) -> dict[str, Any]:
    """The checkpoint of `network` ('ema' or 'student') of a training `checkpoint`: one set of
    weights, no teacher and no best score (`average_checkpoints.with_weights`)."""
    if network == "ema":
        weights = checkpoint.get("teacher")
        if weights is None:
            raise ValueError("the checkpoint has no EMA teacher")
    elif network == "student":
        weights = checkpoint["model"]["state"]
    else:
        raise ValueError(f"unknown network {network!r}; use one of {', '.join(NETWORKS)}")
    slim = {key: checkpoint[key] for key in KEPT if key in checkpoint}
    slim["model"] = {"config": checkpoint["model"]["config"]}
    return with_weights(slim, half_weights(weights))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoints", type=Path, nargs="+", metavar="CKPT")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--networks", nargs="+", choices=NETWORKS, default=["ema"])
    args = parser.parse_args(argv)
    from hc_studio.core.training.checkpoint import (
        CheckpointError,
        load_checkpoint,
        save_checkpoint,
    )

    args.out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in args.checkpoints:
        try:
            checkpoint = load_checkpoint(path)
            for network in args.networks:
                target = args.out_dir / f"{path.stem}-{network}.pt"
                save_checkpoint(target, slim_checkpoint(checkpoint, network))
                print(f"wrote {target}")
        except (CheckpointError, ValueError, KeyError) as error:
            print(f"slim_snapshots: {path}: {error}", file=sys.stderr)
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
