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
from hc_studio.core.io.dicom import spacing_from_dicom
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
    attributes: dict | None = None,
) -> Path:
    """Write (N, H, W[, 3]) frames as an ultrasound DICOM file (JPEG Baseline when `jpeg`).

    Signed frames (int16) get PixelRepresentation 1; `attributes` are set last (they may
    contradict the pixel data on purpose).

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
    ds.PixelRepresentation = 1 if frames.dtype.kind == "i" else 0
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
    for name, value in (attributes or {}).items():
        setattr(ds, name, value)
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


def test_dicom_claiming_a_huge_image_is_refused_before_decoding(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "huge.dcm", gradient()[None])
    import pydicom

    dataset = pydicom.dcmread(path)
    dataset.Rows, dataset.Columns = 40000, 40000  # the header claims 1.6 Gpixel
    dataset.save_as(path)
    with pytest.raises(FrameReadError, match=r"huge\.dcm: frame of 40000x40000 pixels is larger"):
        read_frame(path, 0)


def header(rows: int = 100, cols: int = 200, regions=None, pixel_spacing=None) -> Dataset:
    dataset = Dataset()
    dataset.Rows, dataset.Columns = rows, cols
    if regions is not None:
        dataset.SequenceOfUltrasoundRegions = regions
    if pixel_spacing is not None:
        dataset.PixelSpacing = list(pixel_spacing)
    return dataset


def test_dicom_cm_region_converted_to_mm_anisotropic() -> None:
    spacing = spacing_from_dicom(header(regions=[us_region(0, 0, 199, 99, 0.01, 0.02)]))
    assert (spacing.row_mm, spacing.col_mm, spacing.source) == pytest.approx(
        (0.2, 0.1, "dicom-us-region")
    )
    assert spacing.detail == "DICOM ultrasound region 1 (x 0-199, y 0-99)"


def test_regions_away_from_the_centre_are_used_only_when_they_agree() -> None:
    # A dual view: two panes, neither holds the image centre (99.5, 49.5).
    same = [us_region(0, 0, 90, 99, 0.03, 0.03), us_region(110, 0, 199, 99, 0.03, 0.03)]
    assert spacing_from_dicom(header(regions=same)).col_mm == pytest.approx(0.3)
    differ = [us_region(0, 0, 20, 20, 0.01, 0.01), us_region(150, 0, 199, 99, 0.03, 0.03)]
    spacing = spacing_from_dicom(header(regions=differ, pixel_spacing=(0.5, 0.5)))
    assert spacing == Spacing(0.5, 0.5, "dicom-pixel-spacing")
    assert "regions 1, 2 not used: none holds the image centre" in spacing.provenance


def test_dicom_regions_in_other_units_are_ignored() -> None:
    not_cm = [us_region(0, 0, 199, 99, 0.01, 0.01, units=4)]  # 4 = seconds
    spacing = spacing_from_dicom(header(regions=not_cm, pixel_spacing=(0.5, 0.4)))
    assert spacing == Spacing(0.5, 0.4, "dicom-pixel-spacing")
    assert spacing_from_dicom(header(regions=not_cm)) == Spacing.uncalibrated()


def test_region_outside_the_stored_image_is_not_trusted(tmp_path: Path) -> None:
    regions = [us_region(0, 0, 511, 511, 0.05, 0.05)]  # a 512x512 region on a 64x48 image
    path = write_dicom(tmp_path / "us.dcm", gradient()[None], regions=regions)
    spacing = read_frame(path, 0).spacing
    assert spacing == Spacing.uncalibrated()
    assert spacing.notes == (
        "DICOM ultrasound region 1 not used: its bounds x 0-511, y 0-511 lie outside the "
        "64x48 image",
    )
    inside = [us_region(0, 0, 63, 47, 0.02, 0.02), us_region(0, 0, 511, 511, 0.05, 0.05)]
    path = write_dicom(tmp_path / "both.dcm", gradient()[None], regions=inside)
    spacing = read_frame(path, 0).spacing
    assert spacing == Spacing(0.2, 0.2, "dicom-us-region")
    assert "region 2 not used" in spacing.provenance


def test_implausible_header_sizes_fall_through_with_the_reason() -> None:
    huge_region = [us_region(0, 0, 199, 99, 1e300, 1e300)]
    spacing = spacing_from_dicom(header(regions=huge_region, pixel_spacing=(0.2, 0.2)))
    assert spacing == Spacing(0.2, 0.2, "dicom-pixel-spacing")
    assert "region 1 not used: pixel size 1e+301 mm is outside" in spacing.provenance
    spacing = spacing_from_dicom(header(pixel_spacing=(5.0, 5.0)))  # 5 mm: cm taken for mm?
    assert spacing == Spacing.uncalibrated()
    assert spacing.notes == (
        "DICOM PixelSpacing (0028,0030) not used: pixel size 5 mm is outside the plausible "
        "range 0.01-2 mm",
    )


def test_signed_16bit_uses_rescale_then_window(tmp_path: Path) -> None:
    stored = np.array([[-1000, -100, 0, 100, 1000]], np.int16).repeat(4, axis=0)
    # Real values = stored * 2 + 10; window 10 +- 100 covers -90..110 of them.
    window = {"RescaleSlope": 2, "RescaleIntercept": 10, "WindowCenter": 10.5, "WindowWidth": 201}
    path = write_dicom(tmp_path / "s.dcm", stored[None], attributes=window)
    pixels = read_frame(path, 0).pixels[0]
    np.testing.assert_allclose(pixels, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)


def test_signed_16bit_without_window_spans_its_values(tmp_path: Path) -> None:
    stored = np.array([[-300, -200, -100, 0, 100]], np.int16).repeat(4, axis=0)
    path = write_dicom(tmp_path / "s.dcm", stored[None])
    pixels = read_frame(path, 0).pixels[0]
    # Not squeezed into the middle of -32768..32767 (a flat grey frame, "no head found").
    np.testing.assert_allclose(pixels, [0.0, 0.25, 0.5, 0.75, 1.0], atol=1e-6)


@pytest.mark.parametrize("rows_cols", [(512, 512), (32, 32)])
def test_rows_columns_that_disagree_with_the_pixel_data_are_an_error(
    tmp_path: Path, rows_cols: tuple[int, int]
) -> None:
    rows, cols = rows_cols
    attributes = {"Rows": rows, "Columns": cols}
    path = write_dicom(tmp_path / "liar.dcm", gradient()[None], attributes=attributes)
    message = rf"^liar\.dcm: Rows x Columns {rows}x{cols} do not match the pixel data \(3072 bytes"
    with pytest.raises(FrameReadError, match=message):
        read_frame(path, 0)
    with pytest.raises(FrameReadError, match=message):
        list(load_frames(path))


def test_odd_length_pixel_data_with_its_pad_byte_is_fine(tmp_path: Path) -> None:
    pixels = gradient(height=5, width=7)  # 35 bytes, stored padded to 36
    path = write_dicom(tmp_path / "odd.dcm", pixels[None])
    np.testing.assert_allclose(read_frame(path, 0).pixels, pixels / 255, atol=1e-6)


def test_unknown_transfer_syntax_is_a_read_error_naming_the_file(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "odd.dcm", gradient()[None])
    data = path.read_bytes()  # pydicom will not write an unknown syntax: patch it in
    path.write_bytes(data.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.9\x00", 1))
    with pytest.raises(FrameReadError, match=r"odd\.dcm: unknown transfer syntax"):
        read_frame(path, 0)
