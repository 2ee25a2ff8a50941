"""Export a run's checkpoints as candidate models and choose one on VALIDATION frames only.

For every checkpoint given (e.g. the copies of `last.pt` kept at each validation of a run), two
candidates are exported to ONNX: the trained network (`<stem>-student.onnx`) and the run's EMA
teacher, an exponential moving average of the trained weights (`<stem>-ema.onnx`; the trainer
keeps one for the methods that use a teacher, and for ERSR's supervised stage too). An `.onnx`
file among the checkpoints is a candidate as it is. The shipped
model, when given with `--baseline`, is a candidate as well. Each is scored on the protocol's
validation side (`protocol_eval.score_model`, the `hc-studio measure` path at full resolution);
the choice is the lowest mean |HC error| over the frames every candidate measured (a candidate
that refuses its worst frame must not win because it refused it), declared before any test score
is seen. The test side
is then scored once, for the chosen model only, with `protocol_eval.py --baseline`.
Exports and scores are kept in OUT_DIR (`<model>.validation.json`), so running the command again
while a run goes on only scores the new checkpoints.

With `--recompute-bn FRAMES_DIR` each EMA teacher is also exported with its BatchNorm statistics
recomputed for its own weights over the frames of FRAMES_DIR at the run's input size
(`<stem>-ema-bn.onnx`, `core.training.batchnorm`).

With `--refiner-of FIRST.onnx` the checkpoints are refining models (`core.refine`, trained on
`make_head_crops.py` windows): each candidate is scored as the second pass of FIRST, through a
copy of FIRST that names it (`<stem>-pair.onnx`, `hc_studio.refiner`, `--margin`).

    python benchmarks/select_candidate.py HC18_DIR/training_set RUN/snapshots/*.pt \\
        --split docs/results/protocol_split.json --baseline models/hc_head_ersr_v1.onnx \\
        --out-dir RUN/candidates --json docs/results/candidates_validation.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
from average_checkpoints import with_weights
from hc_studio.core.atomic import atomic_write
from protocol_eval import (
    BOOTSTRAP_DRAWS,
    BOOTSTRAP_SEED,
    STATISTICS,
    FrameScore,
    bootstrap,
    load_pairs,
    patient_draws,
    score_model,
    split_frames,
)

CRITERION = "hc_abs_mean_mm"
COMMON_CRITERION = "hc_abs_mean_common_mm"  # CRITERION over the frames every candidate measured


def export_candidates(checkpoint: Path, out_dir: Path) -> list[Path]:
    """The student and (when the checkpoint has one) the EMA teacher of `checkpoint`, as ONNX."""
    from hc_studio.core.training.checkpoint import load_checkpoint, save_checkpoint
    from hc_studio.core.training.export_onnx import export_checkpoint

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = checkpoint.stem
    student, teacher = out_dir / f"{stem}-student.onnx", out_dir / f"{stem}-ema.onnx"
    if _newer(student, checkpoint) and _newer(teacher, checkpoint):
        return [student, teacher]
    paths = [export_checkpoint(checkpoint, student, f"{stem}-student")]
    state = load_checkpoint(checkpoint)
    if state.get("teacher") is not None:
        state = with_weights(state, state["teacher"])
        with tempfile.TemporaryDirectory() as folder:
            teacher_checkpoint = Path(folder) / f"{stem}-ema.pt"
            save_checkpoint(teacher_checkpoint, state)
            paths.append(export_checkpoint(teacher_checkpoint, teacher, f"{stem}-ema"))
    return paths


def export_recomputed_ema(checkpoint: Path, out_dir: Path, frames_dir: Path) -> Path | None:
    """The EMA teacher of `checkpoint` with BatchNorm statistics recomputed over the frames of
    `frames_dir`, as `<stem>-ema-bn.onnx`; None when the checkpoint has no teacher."""
    from hc_studio.core.training.batchnorm import recompute_batchnorm_statistics
    from hc_studio.core.training.checkpoint import load_checkpoint, save_checkpoint
    from hc_studio.core.training.export_onnx import export_checkpoint
    from hc_studio.models.networks import build_network

    target = out_dir / f"{checkpoint.stem}-ema-bn.onnx"
    if _newer(target, checkpoint):
        return target
    state = load_checkpoint(checkpoint)
    if state.get("teacher") is None:
        return None
    network = build_network(state["model"]["config"])
    network.load_state_dict(state["teacher"])
    images = read_frames(frames_dir, tuple(state["settings"]["image_size"]))
    recompute_batchnorm_statistics(network, images)
    state["model"]["state"] = network.state_dict()
    state["best"] = None  # the run's validation scores are the student's
    with tempfile.TemporaryDirectory() as folder:
        staged = Path(folder) / f"{checkpoint.stem}-ema-bn.pt"
        save_checkpoint(staged, state)
        return export_checkpoint(staged, target, target.stem)


def read_frames(folder: Path, size: tuple[int, int]):
    """uint8 (N, 1, H, W) tensor of the frames of `folder` (annotations skipped) at `size`,
    decoded and resized as the trainer caches them; unreadable files are named and left out."""
    from hc_studio.core.dataset import import_unlabelled_folder
    from hc_studio.core.training.data import unlabelled_set

    imported = import_unlabelled_folder(folder)
    problems = list(imported.problems)
    frames = unlabelled_set(imported.unlabelled, size, problems)
    for problem in problems:
        print(f"{problem.path}: {problem.problem} (skipped)", file=sys.stderr)
    if not len(frames):
        raise SystemExit(f"{folder}: no frames to recompute BatchNorm statistics over")
    return frames.images


def pair_with(first: Path, refiner: Path, margin: float) -> Path:
    """A copy of `first` beside `refiner` that names it as its refining model."""
    from assemble_model_pair import set_metadata

    pair = refiner.with_name(f"{refiner.stem}-pair.onnx")
    if _newer(pair, refiner) and _newer(pair, first):
        return pair
    with tempfile.TemporaryDirectory(dir=refiner.parent) as folder:
        staged = Path(folder) / pair.name
        staged.write_bytes(first.read_bytes())
        values = {"hc_studio.refiner": refiner.name, "hc_studio.refine_margin": f"{margin:g}"}
        set_metadata(staged, values)
        staged.replace(pair)
    return pair


def _newer(path: Path, than: Path) -> bool:
    return path.is_file() and path.stat().st_mtime >= than.stat().st_mtime


def score_candidate(
    model: Path, pairs: list, draws: list, cache_dir: Path
) -> tuple[dict, list[FrameScore]]:
    """The candidate's validation statistics and its frames, from `cache_dir` when scored after
    its export (a cache without the frames, from before they were kept, is scored again)."""
    cached = cache_dir / f"{model.name}.validation.json"
    if _newer(cached, model):
        row = json.loads(cached.read_text())
        if "frames" in row:
            return row, [FrameScore(**frame) for frame in row.pop("frames")]
    frames = score_model(model, pairs, progress=False)
    row = {"model": model.name}
    row.update({name: bootstrap(frames, STATISTICS[name], draws) for name in STATISTICS})
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(cached) as handle:
        stored = {**row, "frames": [asdict(frame) for frame in frames]}
        handle.write(json.dumps(stored, indent=1) + "\n")
    return row, frames


def frame_errors(frames: Sequence[FrameScore]) -> dict[str, float | None]:
    """File -> |HC error| in mm (None where the model measured no HC)."""
    return {frame.file: frame.hc_abs_mm for frame in frames}


def means_on_common_frames(
    errors: Sequence[Mapping[str, float | None]],
) -> tuple[list[float], int]:
    """Each model's mean |HC error| over the frames that every one of them measured, and how many
    frames that is. Raises ValueError when the models were not scored on the same frames or no
    frame was measured by all."""
    files = set(errors[0])
    if any(set(model) != files for model in errors):
        raise ValueError("the candidates were not scored on the same frames")
    common = sorted(f for f in files if all(model[f] is not None for model in errors))
    if not common:
        raise ValueError("no frame was measured by every candidate")
    return [float(np.mean([model[f] for f in common])) for model in errors], len(common)


def candidate_models(
    paths: Sequence[Path],
    out_dir: Path,
    recompute_bn: Path | None = None,
    refiner_of: Path | None = None,
    margin: float = 1.25,
) -> list[Path]:
    """The ONNX models to score for `paths`: a checkpoint's student and EMA teacher (and its
    recomputed EMA with `recompute_bn`); an `.onnx` path is already a model (a network exported
    elsewhere, e.g. restored from a run kept in half precision) and is scored as it is."""
    models: list[Path] = []
    for path in paths:
        if path.suffix == ".onnx":
            exported = [path]
        else:
            exported = export_candidates(path, out_dir)
            if recompute_bn is not None:
                recomputed = export_recomputed_ema(path, out_dir, recompute_bn)
                exported += [recomputed] if recomputed is not None else []
        if refiner_of is not None:
            exported = [pair_with(refiner_of, model, margin) for model in exported]
        models += exported
    return models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="HC18 training_set")
    parser.add_argument(
        "checkpoints", type=Path, nargs="+", metavar="CKPT", help="checkpoints, or ONNX models"
    )
    parser.add_argument("--split", type=Path, required=True, help="protocol_split.json")
    parser.add_argument("--baseline", type=Path, help="the shipped model, scored as a candidate")
    parser.add_argument("--out-dir", type=Path, required=True, help="where the ONNX files go")
    parser.add_argument("--json", type=Path, required=True, help="write the scores here")
    parser.add_argument(
        "--refiner-of", type=Path, metavar="FIRST", help="score checkpoints as FIRST's refiner"
    )
    parser.add_argument("--margin", type=float, default=1.25, help="refining window margin")
    parser.add_argument(
        "--recompute-bn",
        type=Path,
        metavar="FRAMES_DIR",
        help="also score each EMA with BatchNorm statistics recomputed over these frames",
    )
    args = parser.parse_args(argv)
    pairs = load_pairs(args.data_dir, split_frames(args.split, "validation"))
    candidates = [args.baseline] if args.baseline else []
    candidates += candidate_models(
        args.checkpoints, args.out_dir, args.recompute_bn, args.refiner_of, args.margin
    )
    draws = patient_draws([p.patient for p in pairs], BOOTSTRAP_DRAWS, BOOTSTRAP_SEED)
    rows, errors = [], []
    for model in candidates:
        row, frames = score_candidate(model, pairs, draws, args.out_dir)
        rows.append(row)
        errors.append(frame_errors(frames))
        print(
            f"{model.name}: mean |HC error| {row[CRITERION]['value']:.3f} mm, "
            f"Dice {row['dice']['value']:.4f}",
            flush=True,
        )
    try:
        common_means, common = means_on_common_frames(errors)
    except ValueError as error:
        print(f"select_candidate: {error}", file=sys.stderr)
        return 2
    for row, value in zip(rows, common_means, strict=True):
        row[COMMON_CRITERION] = value
    chosen = min(rows, key=lambda row: row[COMMON_CRITERION])
    report = {
        "side": "validation",
        "criterion": COMMON_CRITERION,
        "common_frames": common,
        "chosen": chosen["model"],
        "candidates": rows,
    }
    with atomic_write(args.json) as handle:
        handle.write(json.dumps(report, indent=1) + "\n")
    print(
        f"chosen on validation: {chosen['model']} ({chosen[COMMON_CRITERION]:.3f} mm over the "
        f"{common} frames every candidate measured)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
