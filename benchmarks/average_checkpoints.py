"""Average the weights of several checkpoints into one checkpoint (weight averaging, a soup).

Why: on 80 validation frames the checkpoints of one run differ by a few tenths of a millimetre
from one validation to the next, more than they differ in quality; the uniform average of the
late checkpoints' weights (as in stochastic weight averaging) is one model that smooths that
noise out without a second network call. The trained weights ("student") of every checkpoint
are averaged, batch-norm running statistics included (the checkpoints come from one run late in
its schedule, so their statistics are close); integer counters are taken from the last one. The
result is written as a copy of the last checkpoint with the averaged weights as its model (and no
teacher), so `select_candidate.py` exports and scores it like any other snapshot.

With `--weights teacher` the checkpoints' EMA teachers are averaged instead. The checkpoints may
then come from several runs that started from the same weights (a "model soup", Wortsman et al.,
ICML 2022): fine-tunings of one starting point stay in one basin of the loss, where the mean of
their weights is itself a good network, often better than each.

    python benchmarks/average_checkpoints.py RUN/snapshots/iter_{1800,2000,2200,2400}.pt \\
        --out RUN/snapshots/avg_1800-2400.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def average_states(states: list[dict]) -> dict:
    """The element-wise mean of floating tensors; other entries from the last state."""
    import torch

    averaged = {}
    for key, last in states[-1].items():
        if torch.is_floating_point(last):
            averaged[key] = (
                torch.stack([state[key].float() for state in states]).mean(0).to(last.dtype)
            )
        else:
            averaged[key] = last.clone()
    return averaged


def averaged_checkpoint(paths: list[Path], weights: str = "student") -> dict:
    """The last of `paths` with the mean of their `weights` ("student" or "teacher") as its model.

    Raises ValueError naming the file when the networks differ or a checkpoint has no teacher.
    """
    from hc_studio.core.training.checkpoint import load_checkpoint

    loaded = [load_checkpoint(path) for path in paths]
    configs = {repr(state["model"]["config"]) for state in loaded}
    if len(configs) != 1:
        raise ValueError("the checkpoints have different networks")
    if weights == "teacher":
        for path, state in zip(paths, loaded, strict=True):
            if state.get("teacher") is None:
                raise ValueError(f"{path}: has no EMA teacher to average")
        states = [state["teacher"] for state in loaded]
    else:
        states = [state["model"]["state"] for state in loaded]
    return with_weights(loaded[-1], average_states(states))


def with_weights(checkpoint: dict, weights: dict) -> dict:
    """`checkpoint` (loaded) with `weights` as its model: no teacher (the result is one set of
    weights) and no best score (the run's validation scores belong to other weights)."""
    checkpoint["model"]["state"] = weights
    checkpoint["teacher"] = None
    checkpoint["best"] = None
    return checkpoint


def main(argv: list[str] | None = None) -> int:
    from hc_studio.core.training.checkpoint import save_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", type=Path, nargs="+", help="Checkpoints to average.")
    parser.add_argument("--out", type=Path, required=True, help="The averaged checkpoint.")
    parser.add_argument(
        "--weights",
        choices=("student", "teacher"),
        default="student",
        help="average the trained networks (default) or the runs' EMA teachers",
    )
    args = parser.parse_args(argv)
    if len(args.checkpoints) < 2:
        print("average_checkpoints: give at least two checkpoints", file=sys.stderr)
        return 2
    try:
        result = averaged_checkpoint(args.checkpoints, args.weights)
    except ValueError as error:
        print(f"average_checkpoints: {error}", file=sys.stderr)
        return 2
    save_checkpoint(args.out, result)
    print(f"wrote {args.out} (mean of {len(args.checkpoints)} checkpoints' {args.weights})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
