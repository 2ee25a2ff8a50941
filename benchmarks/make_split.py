"""Make the fixed patient-level train/val split of an HC18-layout folder that the benchmarks use.

Reproduces the held-out set of docs/benchmarks.md: the frames listed in CSV (HC18's
`training_set_pixel_size_and_HC.csv` or a half-resolution copy's `DIR_pixel_size.csv`) are split
by patient (`hc_studio.core.split.split_by_patient`, seeded, so the same seed always gives the
same split), and OUT_DIR gets

    train/  val/                     relative symbolic links to each frame and its annotation
    train_pixel_size.csv             the CSV's rows of each side (same header); the name starts
    val_pixel_size.csv               with the folder's name, so `hc-studio` finds it by itself
    split.json                       the source, the settings, and the patients and frames per side

No image is copied. Frames without an annotation or missing on disk are reported and left out.

    python benchmarks/make_split.py DATA_DIR CSV OUT_DIR [--val-fraction 0.2] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from hc_studio.core.atomic import atomic_write
from hc_studio.core.csv_safety import safe_writer
from hc_studio.core.split import patient_id, split_by_patient

SIDES = ("train", "val")
ANNOTATION_SUFFIX = "_Annotation"


class SplitError(ValueError):
    """The split cannot be made; str() says which file or folder and why."""


@dataclass(frozen=True)
class FrameRow:
    """One CSV row: `name` (the frame's file name), its patient, and the row as read."""

    name: str
    patient: str
    row: list[str]


def annotation_name(frame_name: str) -> str:
    """`010_2HC.png` -> `010_2HC_Annotation.png`."""
    path = Path(frame_name)
    return f"{path.stem}{ANNOTATION_SUFFIX}{path.suffix}"


def read_frame_rows(csv_path: Path, data_dir: Path) -> tuple[list[str], list[FrameRow], list[str]]:
    """(header, usable rows, problems): rows whose frame and annotation exist in `data_dir`."""
    with csv_path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle) if row and "".join(row).strip()]
    if not rows:
        raise SplitError(f"{csv_path.name}: empty CSV")
    header, body = rows[0], rows[1:]
    usable, problems = [], []
    for line_no, row in enumerate(body, start=2):
        name = row[0].strip()
        if not (data_dir / name).is_file():
            problems.append(f"{csv_path.name}:{line_no}: {name} not found in {data_dir.name}")
        elif not (data_dir / annotation_name(name)).is_file():
            problems.append(f"{name}: no {annotation_name(name)}")
        else:
            usable.append(FrameRow(name, patient_id(name), row))
    if not usable:
        raise SplitError(f"{csv_path.name}: no frame with an annotation found in {data_dir}")
    return header, usable, problems


def plan_split(frames: list[FrameRow], val_fraction: float, seed: int) -> dict[str, list[FrameRow]]:
    """{"train": rows, "val": rows}: about `val_fraction` of the frames in val, by patient."""
    train, val = split_by_patient(frames, val_fraction, seed, patient_of=lambda f: f.patient)
    return {"train": train, "val": val}


def _link(target: Path, link: Path) -> None:
    """A relative symbolic link, so the split survives moving its parent folder tree."""
    link.symlink_to(os.path.relpath(target.resolve(), link.parent.resolve()))


def _prepare_side_folder(folder: Path, force: bool) -> None:
    """An empty folder; with `force`, links left by an earlier split are removed (never files)."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = list(folder.iterdir())
    if entries and not force:
        raise SplitError(f"{folder}: not empty (use --force to replace an earlier split)")
    others = [entry.name for entry in entries if not entry.is_symlink()]
    if others:
        raise SplitError(f"{folder}: holds files that are not links ({', '.join(others[:3])})")
    for entry in entries:
        entry.unlink()


def write_split(
    data_dir: Path,
    csv_path: Path,
    out_dir: Path,
    val_fraction: float,
    seed: int,
    force: bool = False,
) -> dict:
    """Write the split (see the module docstring); returns the split.json content."""
    header, frames, problems = read_frame_rows(csv_path, data_dir)
    sides = plan_split(frames, val_fraction, seed)
    summary: dict = {
        "source": str(data_dir),
        "csv": str(csv_path),
        "val_fraction": val_fraction,
        "seed": seed,
        "skipped": problems,
    }
    for side in SIDES:
        folder = out_dir / side
        _prepare_side_folder(folder, force)
        for frame in sides[side]:
            for name in (frame.name, annotation_name(frame.name)):
                _link(data_dir / name, folder / name)
        with atomic_write(out_dir / f"{side}_pixel_size.csv", newline="") as handle:
            safe_writer(handle).writerows([header, *(frame.row for frame in sides[side])])
        summary[side] = {
            "frames": [frame.name for frame in sides[side]],
            "patients": sorted({frame.patient for frame in sides[side]}),
        }
    with atomic_write(out_dir / "split.json") as handle:
        handle.write(json.dumps(summary, indent=2) + "\n")
    return summary


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="HC18-layout folder")
    parser.add_argument("csv", type=Path, metavar="CSV", help="its pixel-size CSV")
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="where train/ and val/ go")
    parser.add_argument("--val-fraction", type=_fraction, default=0.2, help="default 0.2")
    parser.add_argument("--seed", type=int, default=0, help="default 0")
    parser.add_argument("--force", action="store_true", help="replace an earlier split's links")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = write_split(
            args.data_dir, args.csv, args.out_dir, args.val_fraction, args.seed, args.force
        )
    except (SplitError, OSError, UnicodeDecodeError) as error:
        print(f"make_split: {error}", file=sys.stderr)
        return 2
    for problem in summary["skipped"]:
        print(f"skipped {problem}", file=sys.stderr)
    for side in SIDES:
        count, patients = len(summary[side]["frames"]), len(summary[side]["patients"])
        print(f"{side}: {count} frames of {patients} patients -> {args.out_dir / side}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
