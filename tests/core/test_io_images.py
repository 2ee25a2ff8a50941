"""Still images: colour and 16-bit conversion, multi-page TIFF, errors, folder scanning."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core.io import (
    SUPPORTED_SUFFIXES,
    FrameReadError,
    count_frames,
    find_frame_files,
    load_frames,
    read_frame,
    read_grey,
)
from hc_studio.core.io.images import to_grey_float
from hc_studio.core.spacing import Spacing


def write_png(path: Path, pixels: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), pixels)
    return path


def test_grey_png_reads_as_float_0_to_1(tmp_path: Path) -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    grey = read_grey(write_png(tmp_path / "g.png", pixels))
    assert grey.dtype == np.float32 and grey.shape == (16, 16)
    np.testing.assert_allclose(grey, pixels / 255, atol=1e-6)


def test_rgb_png_screenshot_becomes_grey(tmp_path: Path) -> None:
    bgr = np.zeros((8, 10, 3), np.uint8)
    bgr[..., 2] = 255  # red in OpenCV's BGR order
    grey = read_grey(write_png(tmp_path / "rgb.png", bgr))
    assert grey.shape == (8, 10)
    np.testing.assert_allclose(grey, 0.299, atol=1 / 255)


def test_rgba_png_drops_alpha(tmp_path: Path) -> None:
    bgra = np.full((8, 8, 4), 128, np.uint8)
    bgra[..., 3] = 0  # fully transparent: the grey value still comes from the colour
    np.testing.assert_allclose(read_grey(write_png(tmp_path / "a.png", bgra)), 128 / 255, atol=1e-6)


def test_16bit_tiff_scaled_by_full_range(tmp_path: Path) -> None:
    pixels = np.array([[0, 32768, 65535]], np.uint16).repeat(3, axis=0)
    path = tmp_path / "deep.tif"
    assert cv2.imwrite(str(path), pixels)
    np.testing.assert_allclose(read_grey(path)[0], [0, 32768 / 65535, 1.0], atol=1e-6)


def test_multi_page_tiff_every_page_is_a_frame(tmp_path: Path) -> None:
    pages = [np.full((6, 7), 40 * (i + 1), np.uint8) for i in range(3)]
    path = tmp_path / "pages.tiff"
    assert cv2.imwritemulti(str(path), pages)
    assert count_frames(path) == 3
    frames = list(load_frames(path))
    assert [(f.index, f.n_frames) for f in frames] == [(0, 3), (1, 3), (2, 3)]
    assert read_frame(path, 2).pixels[0, 0] == pytest.approx(120 / 255)


def test_still_frame_fields_and_override(tmp_path: Path) -> None:
    path = write_png(tmp_path / "scan.png", np.zeros((5, 9), np.uint8))
    (frame,) = list(load_frames(path))
    assert (frame.path, frame.index, frame.n_frames) == (str(path), 0, 1)
    assert frame.spacing == Spacing.uncalibrated()
    override = Spacing(0.2, 0.1, "csv")
    assert read_frame(path, 0, spacing_override=override).spacing == override


def test_truncated_png_raises_frame_read_error_naming_file(tmp_path: Path) -> None:
    good = write_png(
        tmp_path / "good.png", (np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)
    )
    data = good.read_bytes()
    truncated = tmp_path / "scan.png"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(FrameReadError, match=r"^scan\.png: truncated PNG") as info:
        list(load_frames(truncated))
    assert info.value.path == truncated


def test_a_png_with_a_corrupt_body_is_still_named(tmp_path: Path) -> None:
    good = write_png(tmp_path / "good.png", np.full((64, 64), 90, np.uint8))
    data = bytearray(good.read_bytes())
    data[40:60] = bytes(20)  # damage the image data, keep the end marker
    broken = tmp_path / "broken.png"
    broken.write_bytes(bytes(data))
    with pytest.raises(FrameReadError, match=r"^broken\.png: "):
        list(load_frames(broken))


def test_missing_and_unsupported_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(FrameReadError, match=r"^gone\.png: file not found"):
        read_frame(tmp_path / "gone.png", 0)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(FrameReadError, match=r"^notes\.txt: not a supported frame file"):
        count_frames(notes)
    with pytest.raises(FrameReadError, match="no frame 1"):
        read_frame(write_png(tmp_path / "one.png", np.zeros((4, 4), np.uint8)), 1)


def test_find_frame_files_recurses_sorts_and_skips(tmp_path: Path) -> None:
    sub = tmp_path / "b_folder"
    sub.mkdir()
    frame = np.zeros((4, 4), np.uint8)
    expected = [
        write_png(tmp_path / "a.png", frame),
        write_png(sub / "c.JPG", frame),
        write_png(tmp_path / "z_HC.png", frame),
    ]
    write_png(tmp_path / "z_HC_Annotation.png", frame)  # a label, not a frame
    (tmp_path / "readme.txt").write_text("x")
    (tmp_path / ".hidden.png").write_bytes(b"")
    found = find_frame_files([tmp_path, tmp_path / "a.png", tmp_path / "missing"])
    assert found == sorted(expected)


def test_supported_suffixes_cover_the_formats() -> None:
    for suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".avi", ".mp4", ".mov"):
        assert suffix in SUPPORTED_SUFFIXES
    assert {".wmv", ".mkv"} <= set(SUPPORTED_SUFFIXES)


def crafted_png(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims `width` x `height`, with no real pixel data behind it."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\0" * 64)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def crafted_jpeg(width: int, height: int) -> bytes:
    """JPEG markers up to a baseline SOF0 that claims `width` x `height`."""
    import struct

    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def crafted_tiff(width: int, height: int) -> bytes:
    """A little-endian TIFF whose one IFD claims `width` x `height` (LONG tags)."""
    import struct

    entries = struct.pack("<HHII", 256, 4, 1, width) + struct.pack("<HHII", 257, 4, 1, height)
    return b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 2) + entries + struct.pack("<I", 0)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("huge.png", crafted_png(40000, 40000)),
        ("huge.jpg", crafted_jpeg(40000, 40000)),
        ("huge.tif", crafted_tiff(40000, 40000)),
    ],
    ids=["png", "jpeg", "tiff"],
)
def test_huge_frames_are_refused_from_the_header(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    pattern = "^" + re.escape(name) + ": frame of 40000x40000 pixels is larger than"
    with pytest.raises(FrameReadError, match=pattern):
        list(load_frames(path))
    with pytest.raises(FrameReadError, match="8192x8192 limit"):
        read_frame(path, 0)


def test_header_sizes_match_what_opencv_decodes(tmp_path: Path) -> None:
    from hc_studio.core.io.images import header_sizes

    pixels = (np.random.default_rng(1).random((37, 53)) * 255).astype(np.uint8)
    for suffix in (".png", ".jpg", ".bmp", ".tif"):
        path = write_png(tmp_path / f"frame{suffix}", pixels)
        assert header_sizes(path.read_bytes()) == [(37, 53)], suffix
    pages = tmp_path / "pages.tif"
    assert cv2.imwritemulti(str(pages), [pixels, pixels[:20, :30]])
    assert header_sizes(pages.read_bytes()) == [(37, 53), (20, 30)]
    assert header_sizes(b"not an image at all") is None


def test_many_pages_over_the_file_limit_are_refused(tmp_path: Path, monkeypatch) -> None:
    from hc_studio.core.io import images

    monkeypatch.setattr(images, "MAX_FILE_PIXELS", 2 * 40 * 40)
    pages = tmp_path / "stack.tif"
    assert cv2.imwritemulti(str(pages), [np.zeros((40, 40), np.uint8)] * 3)
    with pytest.raises(FrameReadError, match=r"^stack\.tif: 3 pages of .* exceed"):
        list(load_frames(pages))


def test_a_huge_png_gives_a_per_file_error_and_the_batch_goes_on(
    tmp_path: Path, tiny_onnx_model: Path
) -> None:
    from hc_studio.core.inference import SegmentationEngine
    from hc_studio.core.measure import measure_paths
    from hc_studio.core.records import Status

    (tmp_path / "a_huge.png").write_bytes(crafted_png(40000, 40000))
    write_png(tmp_path / "b_small.png", np.full((64, 96), 30, np.uint8))
    engine = SegmentationEngine(tiny_onnx_model, device="cpu")
    records = list(measure_paths([tmp_path], engine))
    assert [Path(r.file).name for r in records] == ["a_huge.png", "b_small.png"]
    assert records[0].status_text.startswith("error: frame of 40000x40000 pixels is larger")
    assert records[1].status is not Status.ERROR


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32])
def test_unsigned_frames_are_divided_by_their_maximum_and_stay_in_0_1(dtype) -> None:
    info = np.iinfo(dtype)
    pixels = np.random.default_rng(1).integers(0, info.max, (40, 60), dtype=dtype, endpoint=True)
    pixels[0, :2] = (info.max, 0)
    grey = to_grey_float(pixels)
    assert grey.dtype == np.float32 and grey[0, 0] == 1.0 and grey[0, 1] == 0.0
    assert np.array_equal(grey, pixels.astype(np.float32) / np.float32(info.max))
    assert to_grey_float(pixels, max_value=100).max() == 1.0  # a smaller maximum is clipped
