"""`hc-studio measure`: measure HC on frames, folders, DICOM and video; write a CSV."""

from __future__ import annotations

import argparse
import functools
from collections import Counter
from pathlib import Path

from . import dicom_outputs
from .common import (
    add_spacing_arguments,
    batch_stopped,
    positive_float,
    save_partial,
    say,
    sigterm_as_interrupt,
)

HELP = "measure head circumference on frames (images, DICOM, video) and write a CSV"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="frame files (images, DICOM, video) or folders, searched recursively",
    )
    parser.add_argument(
        "--model",
        type=Path,
        metavar="ONNX",
        help="segmentation model (default: the model installed with HC Studio)",
    )
    add_spacing_arguments(parser)
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the model runs; auto uses CUDA when it works, else the CPU "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--ga-weeks",
        type=positive_float,
        metavar="WEEKS",
        help="known gestational age in weeks (e.g. from a dating scan), for the HC z-score and "
        "centile (default: none, no z-score or centile)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="CSV",
        help="the measurements CSV to write (required); never an input, a link or a folder; a "
        "batch that stops early leaves it as it was and writes NAME.partial.csv beside it",
    )
    parser.add_argument(
        "--hc18-out",
        type=Path,
        metavar="CSV",
        help="also write an HC18 challenge submission CSV (default: none)",
    )
    parser.add_argument(
        "--masks-out",
        type=Path,
        metavar="DIR",
        help="write each frame's fitted ellipse as a filled PNG mask into DIR, which must not "
        "hold the frames (default: none)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="PDF",
        help="also write a printed report per exam (folder or DICOM study): PDF, PDF-2.pdf, ... "
        "(default: none)",
    )
    parser.add_argument(
        "--operator",
        default="",
        metavar="NAME",
        help="operator named in the printed reports (default: none)",
    )
    dicom_outputs.add_arguments(parser)


def _progress_line(position: int, total: int, record) -> str:
    from ..records import Status

    name = Path(record.file).name
    if record.frame_index > 0:
        name = f"{name} #{record.frame_index}"
    if record.hc is None:
        return f"[{position}/{total}] {name}  {record.status_text}"
    text = f"[{position}/{total}] {name}  HC {record.hc:.1f} {record.unit}"
    return text if record.status is Status.OK else f"{text}  ({record.status_text})"


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
    from ..records import Status

    counts = Counter(record.status for record in records)
    not_a_head = counts[Status.NOT_A_HEAD]
    return (
        f"{len(records)} frame(s): {counts[Status.OK]} ok, {counts[Status.REVIEW]} to review, "
        f"{counts[Status.NO_HEAD]} without a head, "
        + (f"{not_a_head} not a fetal head, " if not_a_head else "")
        + f"{counts[Status.ERROR]} unreadable -> {out}"
    )


def _failure_text(record) -> str:
    """Why a frame gave no measurement: an error's problem, else the status with its reasons."""
    from ..records import Status

    if record.status is Status.ERROR and record.reasons:
        return ", ".join(record.reasons)
    return record.status_text


def _check_output_paths(args: argparse.Namespace, files: list[Path], model: Path) -> None:
    from ..output_paths import check_outputs, partial_path

    inputs = [*files, model, *([args.pixel_csv] if args.pixel_csv else [])]
    outputs = {
        "--out": args.out,
        "the partial file of --out": partial_path(args.out),
        "--hc18-out": args.hc18_out,
        "--report": args.report,
    }
    folders = {"--masks-out": args.masks_out, "--sr-out": args.sr_out}
    check_outputs(outputs, inputs, folders=folders)


def run(args: argparse.Namespace) -> int:
    from ..export import write_hc18_submission, write_records_csv
    from ..inference import SegmentationEngine
    from ..measure import expand_paths, is_failure, measure_file_frames
    from ..spacing import SpacingPolicy, read_pixel_table, user_spacing

    files = expand_paths(args.paths)
    if not files:
        raise ValueError("no frame files found in " + ", ".join(map(str, args.paths)))
    model = _resolve_model(args.model)
    _check_output_paths(args, files, model)  # before anything is read or measured
    policy = SpacingPolicy(
        user_spacing(args.pixel_size, "--pixel-size") if args.pixel_size else None
    )
    if args.pixel_csv:
        policy.add_table(read_pixel_table(args.pixel_csv), applies_to=args.paths)
    for table in policy.unused_tables(files):
        say(
            f"warning: {table.path}: calibrates none of the {len(files)} file(s) measured "
            "(it applies, by file name, to files in its own folder and in the paths given)"
        )
    engine = SegmentationEngine(model, device=args.device)
    say(f"model {engine.describe()} on {engine.provider.removesuffix('ExecutionProvider')}")
    masks = _MaskWriter(args.masks_out) if args.masks_out else None
    records: list = []
    # Each frame's image quality at its ellipse, beside its record: the best frame of a clip
    # weighs it, and the pixels are gone once the frame is measured.
    quality: dict = {}
    # A batch that stops early keeps the previous --out whole and its rows go beside it.
    wants_quality = bool(args.best_frame or args.sr_out)
    with sigterm_as_interrupt():
        try:
            for position, measured in measure_file_frames(
                files, engine, ga_weeks=args.ga_weeks, spacing_policy=policy
            ):
                record = measured.record
                records.append(record)
                # Only the clip outputs rank frames by image quality: others never compute it.
                if wants_quality and measured.quality is not None:
                    quality[(record.file, record.frame_index)] = measured.quality
                say(_progress_line(position, len(files), record))
                # measured.prob is resized to the frame on first use: only when masks are written.
                wants_mask = masks is not None and record.ellipse_px is not None
                if wants_mask and measured.prob is not None:
                    masks.write(record, measured.prob.shape)
            extra = dicom_outputs.extra_columns(args, records, quality)
            write_records_csv(records, args.out, extra)
        except (KeyboardInterrupt, Exception) as stop:

            def save(why: str) -> str:
                write = functools.partial(write_records_csv, records)
                return save_partial("measuring", len(records), args.out, why, write)

            return batch_stopped(stop, save, getattr(args, "debug", False))
    if args.hc18_out:
        skipped = write_hc18_submission(records, args.hc18_out)
        if skipped:
            say(f"HC18 submission: {len(skipped)} frame(s) left out (no ellipse or no pixel size)")
    if args.report:
        from ..report import model_details, write_measure_reports

        details = model_details(engine)
        written = write_measure_reports(records, args.report, args.operator, details, args.ga_weeks)
        say("report: " + ", ".join(map(str, written)))
    for record in filter(is_failure, records):
        frame = f" frame {record.frame_index}" if record.frame_index else ""
        say(f"{record.file}{frame}: {_failure_text(record)}")
    reports_ok = dicom_outputs.write_outputs(args, records, quality)
    say(_summary(records, args.out))
    return 1 if any(is_failure(record) for record in records) or not reports_ok else 0
