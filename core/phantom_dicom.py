"""Frames written as an ultrasound multi-frame DICOM (a cine), for tests and demonstrations.

The file carries what HC Studio reads from a real cine: the frame time (so it plays at its
recorded rate), a pixel spacing, and a study (UID and date) that groups it into an exam.
`probe_sweep` makes such a clip from one frame (the README's cine, and the tests that the
best frame of a clip is its least disturbed frame).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np


def probe_sweep(image: np.ndarray, n_frames: int = 12) -> np.ndarray:
    """A probe sweep over one uint8 frame, (n_frames, H, W) uint8: shift (up to 14 px, 5 px)
    and rotation (up to 6 degrees) growing away from the middle of the clip, the outer frames
    blurred (Gaussian kernel up to 9 px) and darker (to 65 %), as out of plane. With an even
    `n_frames` the two middle frames are nearly untouched (a twelfth of the outer change)."""
    height, width = image.shape
    frames = []
    for index in range(n_frames):
        offset = (index - (n_frames - 1) / 2) / ((n_frames - 1) / 2)  # -1 .. 1
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 6 * offset, 1.0)
        matrix[:, 2] += (14 * offset, 5 * offset)
        moved = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_CONSTANT)
        blur = 1 + 2 * int(4 * abs(offset))
        moved = cv2.GaussianBlur(moved, (blur, blur), 0) if blur > 1 else moved
        frames.append(np.clip(moved * (1 - 0.35 * abs(offset)), 0, 255).astype(np.uint8))
    return np.stack(frames)


DEGRADED_VERSIONS = (
    "noise",
    "blur",
    "low contrast",
    "shifted",
    "good",
    "rotated 10",
    "rotated -20",
)
GOOD_VERSION = DEGRADED_VERSIONS.index("good")


def degraded_versions(grey: np.ndarray) -> list[np.ndarray]:
    """A 0..1 frame among degraded, shifted and rotated versions of itself, (H, W) float each,
    named in DEGRADED_VERSIONS (the frame itself at GOOD_VERSION): a clip whose best frame is
    known (the best-frame tests and `benchmarks/best_frame_hc18.py`)."""
    h, w = grey.shape
    rng = np.random.default_rng(0)

    def rotated(degrees: float) -> np.ndarray:
        return cv2.warpAffine(grey, cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1), (w, h))

    shift = np.float32([[1, 0, 0.35 * w], [0, 1, 0.25 * h]])
    return [
        np.clip(grey + rng.normal(0, 0.3, grey.shape), 0, 1),
        cv2.GaussianBlur(grey, (0, 0), 8),
        0.45 + 0.1 * grey,
        cv2.warpAffine(grey, shift, (w, h)),
        grey,
        rotated(10),
        rotated(-20),
    ]


def write_cine_dicom(
    path: str | Path,
    frames: np.ndarray,
    fps: float,
    pixel_mm: float | None = None,
    study_uid: str | None = None,
    study_date: dt.date | None = None,
    identifiers: Mapping[str, str] | None = None,
) -> Path:
    """Write (N, H, W) uint8 frames as an uncompressed ultrasound multi-frame DICOM file.

    `identifiers`: header keywords such as PatientID, PatientName or AccessionNumber to set.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage, generate_uid

    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 3 or frames.shape[0] < 2:
        raise ValueError(f"a cine needs (N >= 2, H, W) frames, got shape {frames.shape}")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "US"
    if study_date is not None:
        ds.StudyDate = study_date.strftime("%Y%m%d")
    for keyword, value in (identifiers or {}).items():
        setattr(ds, keyword, value)
    ds.NumberOfFrames = frames.shape[0]
    ds.FrameTime = f"{1000.0 / fps:.8g}"  # ms; the rate read back is fps to 8 digits
    ds.Rows, ds.Columns = frames.shape[1:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if pixel_mm is not None:
        ds.PixelSpacing = [f"{pixel_mm:.6g}", f"{pixel_mm:.6g}"]
    ds.PixelData = frames.tobytes()
    path = Path(path)
    ds.save_as(path, enforce_file_format=True)
    return path
