"""Average the EMA teachers of several runs from one starting point (a model soup), chosen on
VALIDATION frames only.

Why: runs that fine-tune the same weights (other losses, lengths or seeds) stay in one basin of
the loss, where the mean of their weights is itself a network, and often a better one than each
(Wortsman et al., "Model soups", ICML 2022). It costs nothing at inference: one network, one call.

Two ways to choose, both scored like any candidate (`select_candidate.score_candidate`, the
`hc-studio measure` path on the protocol's validation frames):

- `--uniform`: the mean of all the checkpoints' teachers, one candidate;
- greedy (the default, Wortsman's greedy soup): the ingredients (each checkpoint's teacher) are
  scored and sorted by mean |HC error|; the soup starts from the best and takes each next
  ingredient in turn when the soup with it is not worse on validation. Every comparison is on
  the frames both sides measured (`select_candidate.means_on_common_frames`): a soup that
  refuses a hard frame is not better for refusing it.

Each soup is written as a checkpoint and an ONNX file named by its ingredients' positions on the
command line (`soup-0-3-4.onnx`), so a second run reuses its exports and scores. The report names
the ingredients by their file names: give them names that say which run they come from.

    python benchmarks/weight_soup.py HC18_DIR/training_set RUN_A/checkpoints/iter_000900.pt \\
        RUN_B/checkpoints/iter_000300.pt ... --split docs/results/protocol_split.json \\
        --out-dir SOUPS --json docs/results/soup_greedy_validation.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from average_checkpoints import averaged_checkpoint
from hc_studio.core.atomic import atomic_write
from protocol_eval import BOOTSTRAP_DRAWS, BOOTSTRAP_SEED, load_pairs, patient_draws, split_frames
from select_candidate import (
    COMMON_CRITERION,
    CRITERION,
    frame_errors,
    means_on_common_frames,
    score_candidate,
)


@dataclass(frozen=True)
class SoupStep:
    """One greedy step: the soup tried (ingredient positions), its mean |HC error| and the kept
    soup's, both over the frames the two measured (`frames`), and whether it was kept."""

    members: tuple[int, ...]
    score: float
    kept_score: float
    frames: int
    kept: bool


FrameErrors = Mapping[str, float | None]


def greedy_soup(
    count: int, errors: Callable[[tuple[int, ...]], FrameErrors]
) -> tuple[tuple[int, ...], list[SoupStep]]:
    """Wortsman's greedy soup over ingredients 0..count-1.

    `errors(members)` is the per-frame validation |HC error| of the mean of those ingredients (a
    one-member soup is the ingredient itself; None where it measured no HC). The ingredients are
    ranked alone over the frames all of them measured (ties in the given order); each joins when
    the soup with it errs no more than the soup without it over the frames both measured.
    Returns the chosen members, sorted, and every step tried.
    """
    if count < 1:
        raise ValueError("a soup needs at least one ingredient")
    alone, common = means_on_common_frames([errors((index,)) for index in range(count)])
    order = sorted(range(count), key=lambda index: alone[index])
    members = (order[0],)
    steps = [SoupStep(members, alone[order[0]], alone[order[0]], common, True)]
    for index in order[1:]:
        tried = tuple(sorted((*members, index)))
        (value, kept_value), common = means_on_common_frames([errors(tried), errors(members)])
        kept = value <= kept_value
        steps.append(SoupStep(tried, value, kept_value, common, kept))
        if kept:
            members = tried
    return tuple(sorted(members)), steps


def soup_model(checkpoints: Sequence[Path], members: tuple[int, ...], out_dir: Path) -> Path:
    """The ONNX export of the mean of `members`' EMA teachers, written once into `out_dir`."""
    from hc_studio.core.training.checkpoint import save_checkpoint
    from hc_studio.core.training.export_onnx import export_checkpoint

    name = "soup-" + "-".join(str(index) for index in members)
    target = out_dir / f"{name}.onnx"
    sources = [checkpoints[index] for index in members]
    if target.is_file() and all(target.stat().st_mtime >= p.stat().st_mtime for p in sources):
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    staged = out_dir / f"{name}.pt"
    save_checkpoint(staged, averaged_checkpoint(sources, "teacher"))
    return export_checkpoint(staged, target, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="HC18 training_set")
    parser.add_argument("checkpoints", type=Path, nargs="+", metavar="CKPT")
    parser.add_argument("--split", type=Path, required=True, help="protocol_split.json")
    parser.add_argument("--out-dir", type=Path, required=True, help="soups and their scores")
    parser.add_argument("--json", type=Path, required=True, help="write the choice here")
    parser.add_argument("--uniform", action="store_true", help="only the mean of all of them")
    args = parser.parse_args(argv)
    pairs = load_pairs(args.data_dir, split_frames(args.split, "validation"))
    draws = patient_draws([p.patient for p in pairs], BOOTSTRAP_DRAWS, BOOTSTRAP_SEED)
    rows: dict[tuple[int, ...], dict] = {}

    scored: dict[tuple[int, ...], FrameErrors] = {}

    def score(members: tuple[int, ...]) -> FrameErrors:
        if members not in scored:  # the kept soup is compared again at every step
            model = soup_model(args.checkpoints, members, args.out_dir)
            row, frames = score_candidate(model, pairs, draws, args.out_dir)
            rows[members], scored[members] = row, frame_errors(frames)
            print(f"{model.name}: mean |HC error| {row[CRITERION]['value']:.3f} mm", flush=True)
        return scored[members]

    try:
        if args.uniform:
            members = tuple(range(len(args.checkpoints)))
            (value,), common = means_on_common_frames([score(members)])
            steps = [SoupStep(members, value, value, common, True)]
        else:
            members, steps = greedy_soup(len(args.checkpoints), score)
    except ValueError as error:
        print(f"weight_soup: {error}", file=sys.stderr)
        return 2
    report = {
        "side": "validation",
        "criterion": COMMON_CRITERION,
        "mode": "uniform" if args.uniform else "greedy",
        "ingredients": [path.name for path in args.checkpoints],
        "steps": [
            {
                "members": list(step.members),
                COMMON_CRITERION: step.score,
                "kept_soup": step.kept_score,
                "frames": step.frames,
                "kept": step.kept,
            }
            for step in steps
        ],
        "chosen": rows[members]["model"],
        "chosen_members": list(members),
        "chosen_scores": rows[members],
    }
    with atomic_write(args.json) as handle:
        handle.write(json.dumps(report, indent=1) + "\n")
    print(f"chosen on validation: {rows[members]['model']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
