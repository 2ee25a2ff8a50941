"""Frame loading: still images, DICOM (single, multi-frame, compressed) and video cine loops.

Every reader yields `Frame`s of (H, W) float32 grey in 0..1 and raises `FrameReadError`
('<file>: <problem>') for anything it cannot read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..spacing_value import Spacing
from .dicom import (
    DICOM_SUFFIXES,
    count_dicom_frames,
    is_dicom,
    iter_dicom_frames,
    read_dicom_frame,
)
from .frame import Frame, FrameReadError
from .images import (
    STILL_SUFFIXES,
    count_still_pages,
    read_grey,
    read_mask_levels,
    read_still_pages,
)
from .video import VIDEO_SUFFIXES, count_video_frames, iter_video_frames, read_video_frame

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Frame",
    "FrameReadError",
    "count_frames",
    "find_broken_links",
    "find_frame_files",
    "frame_file_kind",
    "is_annotation_file",
    "load_frames",
    "read_frame",
    "read_grey",
    "read_mask_levels",
]

SUPPORTED_SUFFIXES: tuple[str, ...] = STILL_SUFFIXES + DICOM_SUFFIXES + VIDEO_SUFFIXES
_ANNOTATION_SUFFIX = "_annotation"


def frame_file_kind(path: Path) -> str:
    """'dicom', 'video' or 'still'; DICOM is recognised by suffix or by its 'DICM' preamble."""
    if path.is_symlink() and not path.exists():
        raise FrameReadError(path, f"broken symbolic link (to {os.readlink(path)}, not found)")
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES:
        return "dicom"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in STILL_SUFFIXES:
        return "still"
    if not path.is_file():
        raise FrameReadError(path, "file not found")
    if is_dicom(path):
        return "dicom"
    raise FrameReadError(path, "not a supported frame file (image, DICOM or video)")


def count_frames(path: str | Path) -> int:
    """Number of frames in a file (1 for a still, except multi-page TIFF).

    Only headers are read where possible: a damaged still may count 1 and fail when read.
    """
    path = Path(path)
    kind = frame_file_kind(path)
    if kind == "dicom":
        return count_dicom_frames(path)
    if kind == "video":
        return count_video_frames(path)
    return count_still_pages(path)


def load_frames(path: str | Path, spacing_override: Spacing | None = None) -> Iterator[Frame]:
    """Yield every frame of a still, DICOM or video file, decoded one at a time.

    Each frame carries the file's own spacing (DICOM header; uncalibrated otherwise) unless
    `spacing_override` is given (`core.spacing.SpacingPolicy` decides which spacing applies).
    """
    path = Path(path)
    kind = frame_file_kind(path)
    if kind == "dicom":
        for index, n_frames, pixels, spacing in iter_dicom_frames(path):
            yield Frame(pixels, str(path), index, n_frames, spacing_override or spacing)
    elif kind == "video":
        spacing = spacing_override or Spacing.uncalibrated()
        for index, n_frames, pixels in iter_video_frames(path):
            yield Frame(pixels, str(path), index, n_frames, spacing)
    else:
        spacing = spacing_override or Spacing.uncalibrated()
        pages = read_still_pages(path)
        for index, pixels in enumerate(pages):
            yield Frame(pixels, str(path), index, len(pages), spacing)


def read_frame(path: str | Path, index: int, spacing_override: Spacing | None = None) -> Frame:
    """Frame `index` (0-based) of a file; FrameReadError when the file has no such frame."""
    path = Path(path)
    kind = frame_file_kind(path)
    if kind == "dicom":
        n_frames, pixels, spacing = read_dicom_frame(path, index)
    elif kind == "video":
        n_frames, pixels = read_video_frame(path, index)
        spacing = Spacing.uncalibrated()
    else:
        pages = read_still_pages(path)
        n_frames = len(pages)
        if not 0 <= index < n_frames:
            raise FrameReadError(path, f"has {n_frames} frame(s), no frame {index}")
        pixels, spacing = pages[index], Spacing.uncalibrated()
    return Frame(pixels, str(path), index, n_frames, spacing_override or spacing)


def is_annotation_file(path: str | Path) -> bool:
    """True for an HC18 annotation image (`NNN_HC_Annotation.png`): a label, not a frame."""
    return Path(path).stem.lower().endswith(_ANNOTATION_SUFFIX)


def _is_frame_file(path: Path) -> bool:
    if path.name.startswith(".") or is_annotation_file(path):
        return False
    if path.suffix.lower() in SUPPORTED_SUFFIXES:
        return True
    # DICOM files often have no suffix, or a UID-like name whose "suffix" is digits.
    return is_dicom(path)


def find_frame_files(paths: Iterable[str | Path]) -> list[Path]:
    """Frame files among `paths`, folders expanded recursively; sorted, without duplicates.

    HC18 annotation images (`*_Annotation.png`), hidden files and files that are neither a
    supported image/video suffix nor DICOM (by preamble) are skipped. A path that does not
    exist is skipped too: the caller reports missing inputs.
    """
    found: set[Path] = set()
    for entry in paths:
        entry = Path(entry)
        if entry.is_dir():
            candidates = (p for p in entry.rglob("*") if p.is_file())
        elif entry.is_file():
            candidates = iter([entry])
        else:
            continue
        found.update(p for p in candidates if _is_frame_file(p))
    return sorted(found)


def find_broken_links(folder: str | Path) -> list[Path]:
    """Symbolic links under `folder` with a frame file's suffix whose target is missing: frames
    a user meant to give, to be reported rather than silently left out."""
    return sorted(
        path
        for path in Path(folder).rglob("*")
        if path.is_symlink()
        and not path.exists()
        and path.suffix.lower() in SUPPORTED_SUFFIXES
        and not is_annotation_file(path)
    )
