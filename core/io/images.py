"""Still images (PNG, JPEG, BMP, TIFF incl. multi-page) read with OpenCV as grey float frames.

Frame dimensions are read from the file's header before anything is decoded (`header_sizes`):
a frame over `MAX_FRAME_SIDE` pixels a side, or a file over `MAX_FILE_PIXELS` in all, is refused
with its size, so that one huge or crafted file cannot exhaust memory and stop a batch.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from .frame import FrameReadError

STILL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_TIFF_SUFFIXES = (".tif", ".tiff")
# Ultrasound frames are at most a few thousand pixels a side. 8192 x 8192 decodes to ~0.8 GB at
# peak (colour bytes, then float32 grey); anything larger is refused before decoding.
MAX_FRAME_SIDE = 8192
MAX_FILE_PIXELS = 4 * MAX_FRAME_SIDE * MAX_FRAME_SIDE  # all pages of a multi-page TIFF together
_MAX_TIFF_PAGES = 10_000  # stops walking a looping or absurd page chain


def check_frame_size(path: str | Path, height: int, width: int) -> None:
    """FrameReadError naming the file and its size when a frame exceeds `MAX_FRAME_SIDE`."""
    if height > MAX_FRAME_SIDE or width > MAX_FRAME_SIDE:
        raise FrameReadError(
            path,
            f"frame of {width}x{height} pixels is larger than the {MAX_FRAME_SIDE}x"
            f"{MAX_FRAME_SIDE} limit (not decoded)",
        )


def to_grey_float(
    pixels: np.ndarray, *, rgb: bool = False, max_value: float | None = None
) -> np.ndarray:
    """Convert an image array to (H, W) float32 in 0..1.

    Accepts (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) with alpha (dropped: the screenshots this
    serves are opaque). Colour is BGR(A) as OpenCV decodes it, or RGB(A) when `rgb` is true.
    Integer data is divided by `max_value`, by default the dtype's maximum (so a 16-bit image is
    divided by 65535, an 8-bit one by 255). Float data already in 0..1 is kept; other float data
    is stretched from its min..max.
    """
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    elif pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        # cvtColor only takes 8/16-bit or float32, so convert wider types first.
        if pixels.dtype not in (np.uint8, np.uint16, np.float32):
            pixels = pixels.astype(np.float32)
        if pixels.shape[2] == 3:
            code = cv2.COLOR_RGB2GRAY if rgb else cv2.COLOR_BGR2GRAY
        else:
            code = cv2.COLOR_RGBA2GRAY if rgb else cv2.COLOR_BGRA2GRAY
        pixels = cv2.cvtColor(pixels, code)
    if pixels.ndim != 2:
        raise ValueError(f"expected a grey or colour image, got an array of shape {pixels.shape}")
    if pixels.dtype == np.bool_:
        return pixels.astype(np.float32)
    if np.issubdtype(pixels.dtype, np.integer):
        top = float(max_value) if max_value else float(np.iinfo(pixels.dtype).max)
        low = float(np.iinfo(pixels.dtype).min)
        if low < 0:  # signed data: shift its range to start at 0
            pixels = pixels.astype(np.float64) - low
            top = top - low
        grey = pixels.astype(np.float32)
        grey /= np.float32(top)
        if max_value is None and low >= 0:
            return grey  # unsigned data over its own maximum is already in 0..1 (no clip pass)
        return np.clip(grey, 0.0, 1.0, out=grey)
    grey = pixels.astype(np.float32)
    finite = grey[np.isfinite(grey)]
    if finite.size == 0:
        return np.zeros(grey.shape, np.float32)
    low, high = float(finite.min()), float(finite.max())
    if low < 0.0 or high > 1.0:
        grey = (grey - low) / (high - low) if high > low else np.zeros_like(grey)
    return np.nan_to_num(np.clip(grey, 0.0, 1.0), nan=0.0).astype(np.float32)


def _read_bytes(path: Path) -> np.ndarray:
    # np.fromfile + imdecode instead of imread: imread cannot open non-ASCII paths on Windows.
    try:
        return np.fromfile(str(path), dtype=np.uint8)
    except FileNotFoundError:
        raise FrameReadError(path, "file not found") from None
    except OSError as error:
        raise FrameReadError(path, f"cannot be read ({error.strerror or error})") from None


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"


def _check_png_complete(path: Path, data: np.ndarray) -> None:
    """A PNG cut short (an interrupted copy) is named here, before libpng prints its own error."""
    head, tail = data[:8].tobytes(), data[-64:].tobytes()
    if head == _PNG_SIGNATURE and _PNG_END not in tail:
        raise FrameReadError(path, "truncated PNG (the file ends before its last chunk)")


def _png_size(data: bytes) -> list[tuple[int, int]] | None:
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return [(height, width)]


# JPEG start-of-frame markers (baseline, progressive, lossless, ...); C4, C8 and CC are not.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> list[tuple[int, int]] | None:
    if data[:2] != b"\xff\xd8":
        return None
    position = 2
    while position + 9 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return [(height, width)]
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length
    return None


def _bmp_size(data: bytes) -> list[tuple[int, int]] | None:
    if data[:2] != b"BM" or len(data) < 26:
        return None
    width, height = struct.unpack("<ii", data[18:26])
    return [(abs(height), abs(width))]


def _tiff_sizes(data: bytes) -> list[tuple[int, int]] | None:
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 8 or struct.unpack(order + "H", data[2:4])[0] != 42:
        return None
    sizes: list[tuple[int, int]] = []
    (offset,) = struct.unpack(order + "I", data[4:8])
    seen: set[int] = set()
    while offset and offset not in seen and len(sizes) < _MAX_TIFF_PAGES:
        seen.add(offset)
        if offset + 2 > len(data):
            break
        (count,) = struct.unpack(order + "H", data[offset : offset + 2])
        end = offset + 2 + 12 * count
        if end + 4 > len(data):
            break
        tags: dict[int, int] = {}
        for entry in range(offset + 2, end, 12):
            tag, kind = struct.unpack(order + "HH", data[entry : entry + 4])
            if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
                code, size = ("H", 2) if kind == 3 else ("I", 4)
                tags[tag] = struct.unpack(order + code, data[entry + 8 : entry + 8 + size])[0]
        if 256 in tags and 257 in tags:
            sizes.append((tags[257], tags[256]))
        (offset,) = struct.unpack(order + "I", data[end : end + 4])
    return sizes or None


def header_sizes(data: bytes) -> list[tuple[int, int]] | None:
    """(height, width) of every frame, read from a PNG, JPEG, BMP or TIFF header without
    decoding; None when the header is not one of these (the decoder then reports the file)."""
    for reader in (_png_size, _jpeg_size, _bmp_size, _tiff_sizes):
        try:
            sizes = reader(data)
        except struct.error:  # a header cut short: leave the diagnosis to the decoder
            sizes = None
        if sizes is not None:
            return sizes
    return None


def _check_header_sizes(path: Path, data: np.ndarray) -> None:
    sizes = header_sizes(data.tobytes())
    if not sizes:
        return
    for height, width in sizes:
        check_frame_size(path, height, width)
    total = sum(height * width for height, width in sizes)
    if total > MAX_FILE_PIXELS:
        raise FrameReadError(
            path,
            f"{len(sizes)} pages of {total / 1e6:.0f} Mpixel in all exceed the "
            f"{MAX_FILE_PIXELS / 1e6:.0f} Mpixel limit (not decoded)",
        )


def _decode_pages(path: Path) -> list[np.ndarray]:
    data = _read_bytes(path)
    if data.size == 0:
        raise FrameReadError(path, "file is empty")
    _check_header_sizes(path, data)
    _check_png_complete(path, data)
    if path.suffix.lower() in _TIFF_SUFFIXES:
        ok, pages = cv2.imdecodemulti(data, cv2.IMREAD_UNCHANGED)
        if ok and pages:
            return list(pages)
    else:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if image is not None:
            return [image]
    raise FrameReadError(path, "not a readable image (truncated or not an image?)")


def read_grey(path: str | Path) -> np.ndarray:
    """Read one image file (the first page of a TIFF) as (H, W) float32 in 0..1.

    Colour (RGB/RGBA screenshots) is converted to grey; 16-bit data is divided by 65535.
    Raises FrameReadError naming the file when it cannot be decoded.
    """
    path = Path(path)
    return to_grey_float(_decode_pages(path)[0])


def read_mask_levels(path: str | Path) -> np.ndarray:
    """Read a mask image (the first page of a TIFF) as (H, W) with its own stored values.

    Unlike `read_grey`, nothing is rescaled: a label map keeps its labels (0, 1, 2, ...) so a
    label can be picked by its number. Colour is converted to grey. Raises FrameReadError.
    """
    path = Path(path)
    pixels = _decode_pages(path)[0]
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    elif pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        code = cv2.COLOR_BGR2GRAY if pixels.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        pixels = cv2.cvtColor(pixels.astype(np.float32), code)
    if pixels.ndim != 2:
        raise FrameReadError(path, f"not a grey or colour image (array of shape {pixels.shape})")
    return pixels


def read_still_pages(path: str | Path) -> list[np.ndarray]:
    """Every page of a still image as (H, W) float32 0..1 (several only for multi-page TIFF)."""
    path = Path(path)
    return [to_grey_float(page) for page in _decode_pages(path)]


def count_still_pages(path: str | Path) -> int:
    path = Path(path)
    if path.suffix.lower() in _TIFF_SUFFIXES:
        return len(_decode_pages(path))
    return 1
