"""The fixed train / validation / test split of the honest evaluation protocol.

`hc-head-ersr-v1` was trained on the train side of `make_split.py --val-fraction 0.2 --seed 0`;
its held-out side (159 frames of 133 patients) are the only HC18 frames it never saw. So that
the old model can be scored beside every new candidate on the same frames, the protocol keeps
that train side as its train set and splits the held-out patients in two, by patient and seeded:

    train       = make_split train side (seed 0, 20 %)      training only
    validation  = half of the held-out patients            every choice (checkpoint, thresholds)
    test        = the other half                           scored once per candidate

The split is written to JSON (docs/results/protocol_split.json in the repository) and, with
`--out-dir`, as three folders of relative links (`train/`, `validation/`, `test/`, each with its
`<side>_pixel_size.csv`) that `hc-studio train --val` and `hc-studio evaluate` read directly.
The same CSV row order gives the same patients for the full-resolution frames and for a
`downsample_hc18.py` copy, so one JSON serves both.

    python benchmarks/make_protocol_split.py DATA_DIR CSV [--json OUT.json] [--out-dir DIR]
    python benchmarks/make_protocol_split.py DATA_DIR CSV --check docs/results/protocol_split.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hc_studio.core.atomic import atomic_write
from hc_studio.core.csv_safety import safe_writer
from hc_studio.core.split import split_by_patient
from make_split import (
    FrameRow,
    SplitError,
    _link,
    _prepare_side_folder,
    annotation_name,
    plan_split,
    read_frame_rows,
)

BASE_VAL_FRACTION = 0.2  # the shipped model's held-out share (its model card)
BASE_SEED = 0
TEST_FRACTION = 0.5  # of the held-out frames, by patient
TEST_SEED = 14
SIDES = ("train", "validation", "test")


def plan_protocol(frames: list[FrameRow]) -> dict[str, list[FrameRow]]:
    """{"train", "validation", "test"}: the shipped model's train side, its held-out side halved."""
    base = plan_split(frames, BASE_VAL_FRACTION, BASE_SEED)
    validation, test = split_by_patient(
        base["val"], TEST_FRACTION, TEST_SEED, patient_of=lambda f: f.patient
    )
    return {"train": base["train"], "validation": validation, "test": test}


def describe(sides: dict[str, list[FrameRow]]) -> dict:
    """The JSON record of a split: settings, then frames and patients per side."""
    summary: dict = {
        "base_split": {"script": "make_split.py", "val_fraction": BASE_VAL_FRACTION, "seed": 0},
        "held_out_split": {"test_fraction": TEST_FRACTION, "seed": TEST_SEED},
    }
    for side in SIDES:
        summary[side] = {
            "frames": [frame.name for frame in sides[side]],
            "patients": sorted({frame.patient for frame in sides[side]}),
        }
    return summary


def write_folders(
    data_dir: Path, header: list[str], sides: dict[str, list[FrameRow]], out_dir: Path, force: bool
) -> None:
    """`out_dir/<side>/` links to each frame and outline, and `out_dir/<side>_pixel_size.csv`."""
    for side in SIDES:
        folder = out_dir / side
        _prepare_side_folder(folder, force)
        for frame in sides[side]:
            for name in (frame.name, annotation_name(frame.name)):
                _link(data_dir / name, folder / name)
        with atomic_write(out_dir / f"{side}_pixel_size.csv", newline="") as handle:
            safe_writer(handle).writerows([header, *(frame.row for frame in sides[side])])


def check_against(summary: dict, recorded_path: Path) -> list[str]:
    """Differences between a freshly planned split and the recorded JSON (empty: identical)."""
    recorded = json.loads(recorded_path.read_text())
    problems = []
    for side in SIDES:
        for key in ("frames", "patients"):
            if summary[side][key] != recorded.get(side, {}).get(key):
                problems.append(f"{recorded_path.name}: {side} {key} differ from the data's split")
    return problems


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="HC18 training_set folder")
    parser.add_argument("csv", type=Path, metavar="CSV", help="its pixel-size CSV")
    parser.add_argument("--json", type=Path, help="write the split record here")
    parser.add_argument("--out-dir", type=Path, help="write train/ validation/ test/ links here")
    parser.add_argument("--check", type=Path, help="compare with a recorded split JSON; exit 1")
    parser.add_argument("--force", action="store_true", help="replace an earlier split's links")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        header, frames, skipped = read_frame_rows(args.csv, args.data_dir)
        sides = plan_protocol(frames)
        summary = describe(sides)
        if args.json:
            with atomic_write(args.json) as handle:
                handle.write(json.dumps(summary, indent=1) + "\n")
        if args.out_dir:
            write_folders(args.data_dir, header, sides, args.out_dir, args.force)
        problems = check_against(summary, args.check) if args.check else []
    except (SplitError, OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        print(f"make_protocol_split: {error}", file=sys.stderr)
        return 2
    for problem in skipped:
        print(f"skipped {problem}", file=sys.stderr)
    for side in SIDES:
        print(
            f"{side}: {len(summary[side]['frames'])} frames of "
            f"{len(summary[side]['patients'])} patients"
        )
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
