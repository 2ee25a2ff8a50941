"""`hc-studio measure`: measure HC on frames, folders, DICOM and video; write a CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_spacing_arguments, positive_float, say

HELP = "measure head circumference on frames (images, DICOM, video) and write a CSV"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    parser.add_argument(
        "--model", type=Path, metavar="ONNX", help="segmentation model (default: the shipped one)"
    )
    add_spacing_arguments(parser)
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the model runs (default: auto, CUDA when it works)",
    )
    parser.add_argument(
        "--ga-weeks",
        type=positive_float,
        metavar="WEEKS",
        help="known gestational age (e.g. from a dating scan) for the HC z-score and centile",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="CSV", help="measurements CSV")
    parser.add_argument(
        "--hc18-out", type=Path, metavar="CSV", help="also write an HC18 challenge submission CSV"
    )
    parser.add_argument(
        "--masks-out",
        type=Path,
        metavar="DIR",
        help="write each frame's fitted ellipse as a filled PNG mask into DIR",
    )


def _progress_line(position: int, total: int, record) -> str:
    name = Path(record.file).name
    if record.frame_index > 0:
        name = f"{name} #{record.frame_index}"
    if record.hc is None:
        return f"[{position}/{total}] {name}  {record.status}"
    text = f"[{position}/{total}] {name}  HC {record.hc:.1f} {record.unit}"
    return text if record.status == "ok" else f"{text}  ({record.status})"


def _resolve_model(requested: Path | None) -> Path:
    from ..inference import default_model_path

    if requested is not None:
        return requested
    installed = default_model_path()
    if installed is None:
        raise ValueError("no model installed with HC Studio; give one with --model FILE.onnx")
    return installed


class _MaskWriter:
    """Writes filled ellipse masks (0/255 PNG) under unique names `<stem>[_fNNNN]_mask.png`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.used: set[str] = set()

    def write(self, record, shape: tuple[int, int]) -> None:
        import cv2

        from ..atomic import atomic_write_bytes
        from ..ellipse import rasterize_ellipse

        stem = Path(record.file).stem
        if record.frame_index > 0 or stem in self.used:
            stem = f"{stem}_f{record.frame_index:04d}"
        name, counter = f"{stem}_mask.png", 1
        while name in self.used:
            counter += 1
            name = f"{stem}_{counter}_mask.png"
        self.used.add(name)
        mask = rasterize_ellipse(record.ellipse_px, shape).astype("uint8") * 255
        ok, encoded = cv2.imencode(".png", mask)
        if not ok:
            raise OSError(f"could not encode the mask of {record.file}")
        atomic_write_bytes(self.folder / name, encoded.tobytes())


def _summary(records: list, out: Path) -> str:
    from ..measure import ERROR_PREFIX, REVIEW_PREFIX, STATUS_NO_HEAD, STATUS_NOT_A_HEAD

    ok = sum(record.status == "ok" for record in records)
    review = sum(record.status.startswith(REVIEW_PREFIX) for record in records)
    no_head = sum(
        record.status == STATUS_NO_HEAD or record.status.startswith(STATUS_NOT_A_HEAD)
        for record in records
    )
    errors = sum(record.status.startswith(ERROR_PREFIX) for record in records)
    return (
        f"{len(records)} frame(s): {ok} ok, {review} to review, {no_head} without a head, "
        f"{errors} unreadable -> {out}"
    )


def run(args: argparse.Namespace) -> int:
    from ..export import write_hc18_submission, write_records_csv
    from ..inference import SegmentationEngine
    from ..measure import ERROR_PREFIX, expand_paths, is_failure, measure_file_frames
    from ..spacing import Spacing, read_pixel_csv

    files = expand_paths(args.paths)
    if not files:
        raise ValueError("no frame files found in " + ", ".join(map(str, args.paths)))
    csv_sizes = read_pixel_csv(args.pixel_csv) if args.pixel_csv else None
    override = Spacing.square(args.pixel_size, "user") if args.pixel_size else None
    engine = SegmentationEngine(_resolve_model(args.model), device=args.device)
    say(f"model {engine.name} on {engine.provider.removesuffix('ExecutionProvider')}")
    masks = _MaskWriter(args.masks_out) if args.masks_out else None
    records = []
    try:
        for position, measured in measure_file_frames(
            files, engine, override, csv_sizes, ga_weeks=args.ga_weeks
        ):
            record = measured.record
            records.append(record)
            say(_progress_line(position, len(files), record))
            if masks is not None and record.ellipse_px is not None and measured.prob is not None:
                masks.write(record, measured.prob.shape)
    finally:  # an interrupted batch still saves what was measured
        write_records_csv(records, args.out)
    if args.hc18_out:
        skipped = write_hc18_submission(records, args.hc18_out)
        if skipped:
            say(f"HC18 submission: {len(skipped)} frame(s) left out (no ellipse or no pixel size)")
    for record in filter(is_failure, records):
        frame = f" frame {record.frame_index}" if record.frame_index else ""
        say(f"{record.file}{frame}: {record.status.removeprefix(ERROR_PREFIX)}")
    say(_summary(records, args.out))
    return 1 if any(is_failure(record) for record in records) else 0
