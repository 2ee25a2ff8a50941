"""`hc-studio fit-annotations`: ellipse and HC from annotation masks or outlines.

HC18 outlines (`NNN_HC_Annotation.png`) are fitted on their pixel coordinates, the challenge's
own definition; filled masks (`images/` + `masks/`) on the sub-pixel boundary of the filled
region (see `core.dataset`). When the pixel CSV has a head circumference column (HC18's
`head circumference (mm)`), the output adds `reference_hc` and `hc_difference` and the summary
reports the largest absolute difference.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from .common import add_mask_label_argument, add_spacing_arguments, say

HELP = "fit ellipses to annotation masks/outlines and report HC (checks reference HCs)"
ORIGIN = "annotation"
_REFERENCE_HC_NAMES = ("head circumference (mm)", "head circumference", "hc", "hc_mm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder",
        type=Path,
        metavar="DIR",
        help="labelled folder: HC18 (NNN_HC.png + NNN_HC_Annotation.png) or images/ + masks/",
    )
    add_spacing_arguments(parser)
    add_mask_label_argument(parser)
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="CSV",
        help="the CSV of fitted ellipses and HC to write (required); never an input, a link or "
        "a folder",
    )


def read_reference_hc(path: Path) -> dict[str, float]:
    """{file name: reference HC} from a CSV with a filename column and an HC column; {} if it
    has no HC column. Raises ValueError naming the file and line for a bad number."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = [name.strip().lower() for name in next(reader, [])]
        column = next((header.index(n) for n in _REFERENCE_HC_NAMES if n in header), None)
        if column is None:
            return {}
        references = {}
        for row in reader:
            if len(row) <= column or not row[0].strip():
                continue
            try:
                references[row[0].strip()] = float(row[column])
            except ValueError:
                raise ValueError(
                    f"{path}:{reader.line_num}: head circumference is not a number: {row[column]!r}"
                ) from None
    return references


def run(args: argparse.Namespace) -> int:
    from ..dataset import import_labelled_folder
    from ..export import write_records_csv
    from ..measure import record_from_ellipse
    from ..output_paths import check_outputs, labelled_folder_inputs

    inputs = [*labelled_folder_inputs(args.folder), *([args.pixel_csv] if args.pixel_csv else [])]
    check_outputs({"--out": args.out}, inputs)
    result = import_labelled_folder(
        args.folder,
        pixel_csv=args.pixel_csv,
        pixel_mm=args.pixel_size,
        load_pixels=False,
        mask_label=args.mask_label,
    )
    for line in result.report_lines():
        say(line)
    references = read_reference_hc(args.pixel_csv) if args.pixel_csv else {}
    records, reference_hc, difference = [], [], []
    for pair in result.pairs:
        record = record_from_ellipse(
            str(pair.image_path), 0, pair.spacing, pair.ellipse_px, pair.mask_path.name, ORIGIN
        )
        records.append(record)
        reference = references.get(pair.image_path.name)
        reference_hc.append(reference)
        comparable = reference is not None and record.unit == "mm"
        difference.append(record.hc - reference if comparable else None)
    extra = {"reference_hc": reference_hc, "hc_difference": difference} if references else None
    write_records_csv(records, args.out, extra)
    say(f"{len(records)} annotation(s) fitted ({result.layout} layout) -> {args.out}")
    if references:
        _report_differences(records, difference)
    if not records:
        raise ValueError(f"{args.folder}: no usable annotation found")
    return 1 if result.problems else 0


def _report_differences(records: list, difference: list[float | None]) -> None:
    compared = [(abs(d), record.file) for d, record in zip(difference, records) if d is not None]
    if not compared:
        say("no frame has a reference HC in the CSV")
        return
    largest, worst_file = max(compared)
    mean = sum(value for value, _ in compared) / len(compared)
    say(
        f"HC vs reference on {len(compared)} frame(s): mean |difference| {mean:.4f} mm, "
        f"largest {largest:.4f} mm ({Path(worst_file).name})"
    )
