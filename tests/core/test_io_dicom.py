"""DICOM frames: native and JPEG-compressed, single and multi-frame, colour, spacing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core.io import (
    FrameReadError,
    count_frames,
    find_frame_files,
    load_frames,
    read_frame,
)
from hc_studio.core.spacing import Spacing
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)


def gradient(height: int = 48, width: int = 64, offset: int = 0) -> np.ndarray:
    """(H, W) uint8 horizontal ramp plus `offset`, distinct per frame."""
    ramp = np.linspace(20, 200, width)[None, :].repeat(height, axis=0)
    return np.clip(ramp + offset, 0, 255).astype(np.uint8)


def us_region(x0, y0, x1, y1, dx_cm, dy_cm, data_type=1, units=3) -> Dataset:
    region = Dataset()
    region.RegionSpatialFormat = 1
    region.RegionDataType = data_type
    region.RegionFlags = 0
    region.RegionLocationMinX0, region.RegionLocationMinY0 = x0, y0
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = x1, y1
    region.PhysicalUnitsXDirection = units
    region.PhysicalUnitsYDirection = units
    region.PhysicalDeltaX, region.PhysicalDeltaY = dx_cm, dy_cm
    return region


def write_dicom(
    path: Path,
    frames: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    regions: list[Dataset] | None = None,
    pixel_spacing: tuple[float, float] | None = None,
    jpeg: bool = False,
) -> Path:
    """Write (N, H, W[, 3]) frames as an ultrasound DICOM file (JPEG Baseline when `jpeg`).

    JPEG frames are encoded with OpenCV and encapsulated: pydicom cannot encode JPEG Baseline.
    Colour JPEG frames are YCbCr inside, as every JPEG encoder writes them (YBR_FULL_422).
    """
    n_frames, height, width = frames.shape[:3]
    colour = frames.ndim == 4
    meta = FileMetaDataset()
    multi = n_frames > 1
    meta.MediaStorageSOPClassUID = (
        UltrasoundMultiFrameImageStorage if multi else UltrasoundImageStorage
    )
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.Rows, ds.Columns = height, width
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    item_bits = frames.dtype.itemsize * 8
    ds.BitsAllocated = item_bits
    ds.BitsStored = bits_stored or item_bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if multi:
        ds.NumberOfFrames = n_frames
    if regions is not None:
        ds.SequenceOfUltrasoundRegions = Sequence(regions)
    if pixel_spacing is not None:
        ds.PixelSpacing = list(pixel_spacing)
    if jpeg:
        encoded = []
        for frame in frames:
            # OpenCV takes BGR: give it the RGB frame reversed so the file holds RGB colours.
            ok, buffer = cv2.imencode(".jpg", frame[..., ::-1] if colour else frame)
            assert ok
            encoded.append(buffer.tobytes())
        ds.PixelData = encapsulate(encoded)
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        ds.LossyImageCompression = "01"
    else:
        ds.PixelData = np.ascontiguousarray(frames).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_single_frame_8bit_reads_as_grey_float(tmp_path: Path) -> None:
    pixels = gradient()
    path = write_dicom(tmp_path / "a.dcm", pixels[None])
    frame = read_frame(path, 0)
    assert frame.pixels.dtype == np.float32 and frame.pixels.shape == (48, 64)
    np.testing.assert_allclose(frame.pixels, pixels / 255, atol=1e-6)
    assert (frame.index, frame.n_frames) == (0, 1)
    assert frame.spacing == Spacing.uncalibrated()


def test_bits_stored_12_scales_to_full_range(tmp_path: Path) -> None:
    pixels = np.array([[0, 2048, 4095]], np.uint16).repeat(4, axis=0)
    path = write_dicom(tmp_path / "b.dcm", pixels[None], bits_stored=12)
    np.testing.assert_allclose(read_frame(path, 0).pixels[0], [0.0, 2048 / 4095, 1.0], atol=1e-6)


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    pixels = gradient()
    path = write_dicom(tmp_path / "m1.dcm", pixels[None], photometric="MONOCHROME1")
    np.testing.assert_allclose(read_frame(path, 0).pixels, 1 - pixels / 255, atol=1e-6)


def test_rgb_photometric_becomes_grey(tmp_path: Path) -> None:
    rgb = np.zeros((1, 16, 16, 3), np.uint8)
    rgb[..., 0] = 200  # pure red: grey = 0.299 * 200
    path = write_dicom(tmp_path / "rgb.dcm", rgb, photometric="RGB")
    np.testing.assert_allclose(read_frame(path, 0).pixels, 0.299 * 200 / 255, atol=2 / 255)


def test_multi_frame_every_frame_addressable(tmp_path: Path) -> None:
    frames = np.stack([gradient(offset=10 * i) for i in range(4)])
    path = write_dicom(tmp_path / "cine.dcm", frames)
    assert count_frames(path) == 4
    loaded = list(load_frames(path))
    assert [f.index for f in loaded] == [0, 1, 2, 3]
    assert all(f.n_frames == 4 for f in loaded)
    for i, frame in enumerate(loaded):
        np.testing.assert_allclose(frame.pixels, frames[i] / 255, atol=1e-6)
    np.testing.assert_allclose(read_frame(path, 2).pixels, frames[2] / 255, atol=1e-6)


def test_frame_index_out_of_range_names_file(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "cine.dcm", np.stack([gradient(), gradient()]))
    with pytest.raises(FrameReadError, match=r"cine\.dcm: has 2 frame\(s\), no frame 5"):
        read_frame(path, 5)


def test_jpeg_baseline_grey_multi_frame(tmp_path: Path) -> None:
    frames = np.stack([gradient(offset=30 * i) for i in range(3)])
    path = write_dicom(tmp_path / "jpeg.dcm", frames, jpeg=True)
    loaded = list(load_frames(path))
    assert len(loaded) == 3
    for i, frame in enumerate(loaded):
        assert np.abs(frame.pixels - frames[i] / 255).mean() < 0.01  # lossy, but close


def test_jpeg_baseline_ybr_colour_becomes_grey(tmp_path: Path) -> None:
    rgb = np.zeros((1, 32, 32, 3), np.uint8)
    rgb[..., 1] = 180  # pure green: grey = 0.587 * 180
    path = write_dicom(tmp_path / "ybr.dcm", rgb, photometric="YBR_FULL_422", jpeg=True)
    pixels = read_frame(path, 0).pixels
    assert pixels.shape == (32, 32)
    assert abs(float(pixels.mean()) - 0.587 * 180 / 255) < 0.02


def test_dicom_without_suffix_is_found_and_read(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "IM_0001", gradient()[None])
    (tmp_path / "notes").write_text("not a frame")
    assert find_frame_files([tmp_path]) == [path]
    assert count_frames(path) == 1
    np.testing.assert_allclose(read_frame(path, 0).pixels, gradient() / 255, atol=1e-6)


def test_ultrasound_region_gives_spacing_in_mm(tmp_path: Path) -> None:
    regions = [us_region(0, 0, 63, 47, 0.02, 0.03)]
    path = write_dicom(tmp_path / "us.dcm", gradient()[None], regions=regions)
    spacing = read_frame(path, 0).spacing
    assert spacing == Spacing(row_mm=0.3, col_mm=0.2, source="dicom-us-region")
    assert not spacing.isotropic


def test_region_holding_image_centre_wins(tmp_path: Path) -> None:
    regions = [
        us_region(0, 0, 63, 10, 0.05, 0.05),  # a large strip away from the centre
        us_region(20, 15, 40, 35, 0.01, 0.01),  # small, but holds the centre (31.5, 23.5)
        us_region(0, 0, 63, 47, 0.09, 0.09, data_type=3),  # spectral Doppler, not B-mode
    ]
    path = write_dicom(tmp_path / "us.dcm", gradient()[None], regions=regions)
    spacing = read_frame(path, 0).spacing
    assert spacing.col_mm == pytest.approx(0.1) and spacing.source == "dicom-us-region"


def test_pixel_spacing_used_without_regions(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "ps.dcm", gradient()[None], pixel_spacing=(0.25, 0.2))
    assert read_frame(path, 0).spacing == Spacing(0.25, 0.2, "dicom-pixel-spacing")


def test_spacing_override_replaces_dicom_spacing(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "ps.dcm", gradient()[None], pixel_spacing=(0.25, 0.2))
    override = Spacing.square(0.1, "user")
    assert next(load_frames(path, spacing_override=override)).spacing == override
    assert read_frame(path, 0, spacing_override=override).spacing == override


def test_damaged_dicom_gives_frame_read_error(tmp_path: Path) -> None:
    good = write_dicom(tmp_path / "good.dcm", gradient()[None])
    data = good.read_bytes()
    damaged = tmp_path / "damaged.dcm"
    damaged.write_bytes(data[: len(data) - 1500])  # pixel data cut short
    with pytest.raises(FrameReadError, match=r"^damaged\.dcm: "):
        read_frame(damaged, 0)
