"""DICOM frames (single and multi-frame, native or compressed) read with pydicom.

Compressed transfer syntaxes are decoded by pydicom's plugins (pylibjpeg for JPEG). Colour
(RGB, YBR_*, PALETTE COLOR) becomes grey; MONOCHROME1 is inverted so that bright is tissue.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..spacing import Spacing, spacing_from_dicom
from .frame import FrameReadError
from .images import to_grey_float

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
    return dataset


def read_dicom_spacing(path: str | Path) -> Spacing:
    """The spacing in a DICOM file's header; uncalibrated when it has none or is unreadable."""
    try:
        return spacing_from_dicom(_read_header(Path(path)))
    except FrameReadError:
        return Spacing.uncalibrated()


def _frame_count(dataset) -> int:
    try:
        return max(1, int(getattr(dataset, "NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def count_dicom_frames(path: str | Path) -> int:
    return _frame_count(_read_header(Path(path)))


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
    bits_stored = int(getattr(dataset, "BitsStored", pixels.dtype.itemsize * 8) or 8)
    signed = int(getattr(dataset, "PixelRepresentation", 0) or 0) == 1
    values = pixels.astype(np.float64)
    if signed:
        values += 2.0 ** (bits_stored - 1)
    grey = np.clip(values / (2.0**bits_stored - 1), 0.0, 1.0).astype(np.float32)
    if photometric == "MONOCHROME1":
        grey = 1.0 - grey
    return grey


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
        yield index, n_frames, _to_grey(pixels, dataset), spacing


def read_dicom_frame(path: str | Path, index: int) -> tuple[int, np.ndarray, Spacing]:
    """(n_frames, pixels (H, W) float32 0..1, spacing) of one frame."""
    for _, n_frames, pixels, spacing in iter_dicom_frames(path, [index]):
        return n_frames, pixels, spacing
    raise FrameReadError(path, f"no frame {index}")  # unreachable: iter yields or raises
