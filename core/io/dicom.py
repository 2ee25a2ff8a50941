"""DICOM frames (single and multi-frame, native or compressed) read with pydicom, and the pixel
spacing their header states.

Compressed transfer syntaxes are decoded by pydicom's plugins (pylibjpeg for JPEG). Colour
(RGB, YBR_*, PALETTE COLOR) becomes grey; MONOCHROME1 is inverted so that bright is tissue.
Signed grey (PixelRepresentation 1) is windowed: RescaleSlope/Intercept, then WindowCenter/Width
when present, else the frame's own minimum to maximum.

Which spacing applies to a frame (a user's value, a CSV, this header) is decided by
`core.spacing.SpacingPolicy`; this module only says what the header holds and why a part of it
cannot be trusted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..spacing_value import Spacing, pixel_size_problem
from .frame import FrameReadError
from .images import check_frame_size, to_grey_float

DICOM_SUFFIXES = (".dcm", ".dicom")
_PREAMBLE_LENGTH = 128


def is_dicom(path: str | Path) -> bool:
    """True for a DICOM Part 10 file ('DICM' after the 128-byte preamble), whatever its suffix."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_PREAMBLE_LENGTH + 4)
    except OSError:
        return False
    return head[_PREAMBLE_LENGTH:] == b"DICM"


def _read_header(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        # force=True also opens files written without the preamble (old ACR-NEMA style .dcm).
        dataset = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except FileNotFoundError:
        raise FrameReadError(path, "file not found") from None
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError) as error:
        raise FrameReadError(path, f"not a readable DICOM file ({error})") from None
    if "Rows" not in dataset or "Columns" not in dataset:
        if not is_dicom(path):
            raise FrameReadError(path, "not a DICOM file")
        raise FrameReadError(path, "DICOM file holds no image (no Rows/Columns)")
    # The header's claim is checked before any pixel is decoded, as for PNG and JPEG.
    check_frame_size(path, int(dataset.Rows), int(dataset.Columns))
    return dataset


# DICOM ultrasound region codes (PS3.3 C.8.5.5.1): spatial format 1 = 2D, data type 1 = tissue
# (B-mode), physical units 3 = cm.
_US_2D, _US_TISSUE, _US_UNIT_CM = 1, 1, 3
PIXEL_SPACING_DETAIL = "DICOM PixelSpacing (0028,0030)"


@dataclass(frozen=True)
class _Region:
    """A B-mode region of `SequenceOfUltrasoundRegions` in pixel bounds, with its spacing."""

    number: int  # item number in the sequence, from 1
    x0: int
    y0: int
    x1: int
    y1: int
    spacing: Spacing

    def holds(self, x: float, y: float) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1

    @property
    def area(self) -> int:
        return (self.x1 - self.x0 + 1) * (self.y1 - self.y0 + 1)


def _region_name(number: int) -> str:
    return f"DICOM ultrasound region {number}"


def _bmode_region(number: int, region, rows: int, cols: int) -> _Region | str | None:
    """The region as a `_Region`; a sentence when it is B-mode in cm but cannot be trusted;
    None when it is not a B-mode region in cm (Doppler, M-mode, other units: not a length)."""
    try:
        is_bmode_cm = (
            int(region.RegionSpatialFormat) == _US_2D
            and int(region.RegionDataType) == _US_TISSUE
            and int(region.PhysicalUnitsXDirection) == _US_UNIT_CM
            and int(region.PhysicalUnitsYDirection) == _US_UNIT_CM
        )
    except (AttributeError, TypeError, ValueError):
        return None
    if not is_bmode_cm:
        return None
    name = _region_name(number)
    try:
        x0, y0 = int(region.RegionLocationMinX0), int(region.RegionLocationMinY0)
        x1, y1 = int(region.RegionLocationMaxX1), int(region.RegionLocationMaxY1)
    except (AttributeError, TypeError, ValueError):
        return f"{name} not used: it has no pixel bounds"
    bounds = f"x {x0}-{x1}, y {y0}-{y1}"
    if not (0 <= x0 <= x1 < cols and 0 <= y0 <= y1 < rows):
        # Bounds past the stored pixels: the region describes another image (a different
        # resolution or a crop), so its scale cannot be trusted for this one.
        return f"{name} not used: its bounds {bounds} lie outside the {cols}x{rows} image"
    try:
        col_mm = abs(float(region.PhysicalDeltaX)) * 10.0
        row_mm = abs(float(region.PhysicalDeltaY)) * 10.0
    except (AttributeError, TypeError, ValueError):
        return f"{name} not used: it has no physical deltas"
    for mm in (col_mm, row_mm):
        problem = pixel_size_problem(mm)
        if problem is not None:
            return f"{name} not used: {problem}"
    detail = f"{name} ({bounds})"
    return _Region(number, x0, y0, x1, y1, Spacing(row_mm, col_mm, "dicom-us-region", detail))


def _region_spacing(dataset) -> tuple[Spacing | None, list[str]]:
    """The spacing of the B-mode region that calibrates the image, and notes on regions refused.

    Candidates are B-mode regions in cm lying inside the stored image (Rows x Columns). The
    region holding the image centre calibrates it (the largest when several do). When none holds
    the centre (a dual view), the regions are used only if they agree on the pixel size: which
    one the head lies in is not known here.
    """
    rows, cols = int(getattr(dataset, "Rows", 0) or 0), int(getattr(dataset, "Columns", 0) or 0)
    regions, notes = [], []
    for number, item in enumerate(getattr(dataset, "SequenceOfUltrasoundRegions", None) or [], 1):
        region = _bmode_region(number, item, rows, cols)
        if isinstance(region, str):
            notes.append(region)
        elif region is not None:
            regions.append(region)
    if not regions:
        return None, notes
    at_centre = [r for r in regions if r.holds((cols - 1) / 2, (rows - 1) / 2)]
    if at_centre:
        return max(at_centre, key=lambda r: r.area).spacing, notes
    first = regions[0].spacing
    if all(math.isclose(r.spacing.row_mm, first.row_mm, rel_tol=1e-6) for r in regions) and all(
        math.isclose(r.spacing.col_mm, first.col_mm, rel_tol=1e-6) for r in regions
    ):
        return max(regions, key=lambda r: r.area).spacing, notes
    numbers = ", ".join(str(r.number) for r in regions)
    notes.append(
        f"DICOM ultrasound regions {numbers} not used: none holds the image centre and their "
        "pixel sizes differ"
    )
    return None, notes


def _pixel_spacing(dataset) -> Spacing | str | None:
    """`PixelSpacing` (row, column in mm) as a Spacing; a sentence when it is implausible."""
    value = getattr(dataset, "PixelSpacing", None)
    if value is None:
        return None
    try:
        row_mm, col_mm = (float(v) for v in value)
    except (TypeError, ValueError):
        return f"{PIXEL_SPACING_DETAIL} not used: not two numbers ({value!r})"
    for mm in (row_mm, col_mm):
        problem = pixel_size_problem(mm)
        if problem is not None:
            return f"{PIXEL_SPACING_DETAIL} not used: {problem}"
    return Spacing(row_mm, col_mm, "dicom-pixel-spacing", PIXEL_SPACING_DETAIL)


def spacing_from_dicom(dataset) -> Spacing:
    """Pixel spacing stated in a DICOM header (a pydicom Dataset; pixel data not needed).

    The B-mode ultrasound region that calibrates the image (source "dicom-us-region", see
    `_region_spacing`), else `PixelSpacing` ("dicom-pixel-spacing"), else uncalibrated. Parts of
    the header that cannot be trusted (a region outside the image, a size outside
    `PLAUSIBLE_PIXEL_MM`) are passed over, and the spacing's `notes` say why.
    """
    spacing, notes = _region_spacing(dataset)
    if spacing is None:
        pixel_spacing = _pixel_spacing(dataset)
        if isinstance(pixel_spacing, str):
            notes.append(pixel_spacing)
        else:
            spacing = pixel_spacing
    return (spacing or Spacing.uncalibrated()).with_notes(notes)


def read_dicom_spacing(path: str | Path) -> Spacing:
    """The spacing in a DICOM file's header; uncalibrated when it has none or is unreadable."""
    try:
        return spacing_from_dicom(_read_header(Path(path)))
    except FrameReadError as error:
        return Spacing.uncalibrated([f"DICOM header not read: {error.problem}"])


def _frame_count(dataset) -> int:
    try:
        return max(1, int(getattr(dataset, "NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def count_dicom_frames(path: str | Path) -> int:
    return _frame_count(_read_header(Path(path)))


def _first_number(value) -> float | None:
    """A DICOM number that may be multi-valued (WindowCenter "40\\60"): its first value."""
    if value is None:
        return None
    try:
        number = float(value if isinstance(value, str | bytes | int | float) else value[0])
    except (TypeError, ValueError, IndexError):
        return None
    return number if math.isfinite(number) else None


def _window_signed(pixels: np.ndarray, dataset) -> np.ndarray:
    """Signed stored values -> 0..1: RescaleSlope/Intercept, then the header's window
    (WindowCenter/Width, PS3.3 C.11.2.1.2 linear) or, without one, the frame's min to max."""
    slope = _first_number(getattr(dataset, "RescaleSlope", None))
    intercept = _first_number(getattr(dataset, "RescaleIntercept", None))
    values = pixels.astype(np.float64) * (1.0 if slope is None else slope)
    values += 0.0 if intercept is None else intercept
    centre = _first_number(getattr(dataset, "WindowCenter", None))
    width = _first_number(getattr(dataset, "WindowWidth", None))
    if centre is not None and width is not None and width >= 1:
        grey = (values - (centre - 0.5)) / max(width - 1.0, 1.0) + 0.5
    else:
        low, high = float(values.min()), float(values.max())
        grey = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return np.clip(grey, 0.0, 1.0).astype(np.float32)


def _to_grey(pixels: np.ndarray, dataset) -> np.ndarray:
    """One decoded frame (rows, cols[, samples]) -> (H, W) float32 0..1."""
    photometric = str(getattr(dataset, "PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        pixels = apply_color_lut(pixels, dataset)  # 16-bit RGB
        return to_grey_float(pixels, rgb=True)
    if pixels.ndim == 3:
        # pydicom converts YBR_* to RGB unless asked for raw data.
        return to_grey_float(pixels, rgb=True)
    if int(getattr(dataset, "PixelRepresentation", 0) or 0) == 1:
        grey = _window_signed(pixels, dataset)
    else:
        bits_stored = int(getattr(dataset, "BitsStored", pixels.dtype.itemsize * 8) or 8)
        grey = np.clip(pixels.astype(np.float64) / (2.0**bits_stored - 1), 0.0, 1.0)
        grey = grey.astype(np.float32)
    if photometric == "MONOCHROME1":
        grey = 1.0 - grey
    return grey


def _size_mismatch(dataset, stored: str) -> str:
    rows, cols = int(dataset.Rows), int(dataset.Columns)
    return f"Rows x Columns {rows}x{cols} do not match the pixel data ({stored})"


def _check_native_pixel_length(path: Path, dataset) -> None:
    """FrameReadError when uncompressed pixel data does not hold Rows x Columns x frames.

    Without this, pixel data larger than the header says is silently cut into a wrong image.
    Compressed (encapsulated) data is checked frame by frame after decoding instead.
    """
    import pydicom
    from pydicom.pixels.utils import get_expected_length

    syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and not syntax.is_transfer_syntax:
        raise FrameReadError(path, f"unknown transfer syntax {syntax} (cannot decode its pixels)")
    if syntax is not None and syntax.is_compressed:
        return
    try:
        full = pydicom.dcmread(path, defer_size=1024, force=True)
        element = full.get_item(0x7FE00010, keep_deferred=True)
        expected = get_expected_length(full)
    except Exception:  # unreadable here: the decoder reports it with the frame
        return
    length = getattr(element, "length", None)
    if element is None or length is None or length == 0xFFFFFFFF:
        return
    if length not in (expected, expected + 1):  # + 1: the pad byte of odd-length data
        stored = f"{length} bytes stored, {expected} expected for {_frame_count(dataset)} frame(s)"
        raise FrameReadError(path, _size_mismatch(dataset, stored))


def iter_dicom_frames(
    path: str | Path, indices: list[int] | None = None
) -> Iterator[tuple[int, int, np.ndarray, Spacing]]:
    """Yield (index, n_frames, pixels (H, W) float32 0..1, header spacing) frame by frame.

    Frames are decoded one at a time, so a long cine never sits in memory as a whole.
    """
    from pydicom.pixels import iter_pixels

    path = Path(path)
    dataset = _read_header(path)
    n_frames = _frame_count(dataset)
    spacing = spacing_from_dicom(dataset)
    _check_native_pixel_length(path, dataset)
    wanted = list(range(n_frames)) if indices is None else list(indices)
    for index in wanted:
        if not 0 <= index < n_frames:
            raise FrameReadError(path, f"has {n_frames} frame(s), no frame {index}")
    decoded = iter_pixels(path, indices=wanted)
    for index in wanted:
        try:
            pixels = next(decoded)
        except StopIteration:
            raise FrameReadError(path, f"pixel data ends before frame {index}") from None
        except FrameReadError:
            raise
        except Exception as error:  # pydicom raises many types for bad or undecodable data
            reason = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            raise FrameReadError(path, f"cannot decode frame {index} ({reason})") from None
        if pixels.shape[:2] != (int(dataset.Rows), int(dataset.Columns)):
            shape = f"frame {index} decodes to {pixels.shape[1]}x{pixels.shape[0]}"
            raise FrameReadError(path, _size_mismatch(dataset, shape))
        yield index, n_frames, _to_grey(pixels, dataset), spacing


def read_dicom_frame(path: str | Path, index: int) -> tuple[int, np.ndarray, Spacing]:
    """(n_frames, pixels (H, W) float32 0..1, spacing) of one frame."""
    for _, n_frames, pixels, spacing in iter_dicom_frames(path, [index]):
        return n_frames, pixels, spacing
    raise FrameReadError(path, f"no frame {index}")  # unreachable: iter yields or raises
