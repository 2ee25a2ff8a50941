"""Import of labelled (and unlabelled) frame folders for training and evaluation.

Two labelled layouts are recognised:

- "hc18": `NNN_HC.png` beside `NNN_HC_Annotation.png` (a 1-pixel ellipse outline). The mask is
  the filled ellipse fitted to the outline's own pixel coordinates (the HC18 reference
  definition), rasterised: pixels whose centre lies inside the ellipse.
- "images-masks": `images/<stem>.<any>` with `masks/<stem>.<any image>`: binary masks, label maps
  (with `mask_label`) and outlines, closed or not, as `core.label_masks` reads them.

Problems with single files never stop an import: they are collected as `ImportProblem`s.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ellipse import Ellipse
from .io import (
    FrameReadError,
    count_frames,
    find_frame_files,
    load_frames,
    read_frame,
    read_mask_levels,
)
from .io.images import STILL_SUFFIXES
from .label_masks import SOURCE_HC18, LabelProblem, describe_source, label_from_grey
from .spacing import Spacing, lookup_csv_size, read_pixel_csv, spacing_for_file
from .split import (
    PATIENTS_CSV,
    labelled_subset_by_patient,
    patient_id,
    read_patients_csv,
    split_by_patient,
)

__all__ = [
    "DatasetLayoutError",
    "ImportProblem",
    "ImportResult",
    "LabelledPair",
    "UnlabelledFrame",
    "import_labelled_folder",
    "import_unlabelled_folder",
    "labelled_subset_by_patient",
    "patient_id",
    "split_by_patient",
]

LAYOUT_HC18 = "hc18"
LAYOUT_IMAGES_MASKS = "images-masks"
LAYOUT_UNLABELLED = "unlabelled"
HC18_ANNOTATION_SUFFIX = "_Annotation"


class DatasetLayoutError(ValueError):
    """The folder is neither of the labelled layouts; str() names the folder."""


@dataclass
class ImportProblem:
    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.path.name}: {self.problem}"


@dataclass
class LabelledPair:
    """A frame with its head mask.

    `image` is (H, W) float32 0..1 and `mask` (H, W) bool (the filled head), or both None when
    imported with `load_pixels=False` (then `read_image()` / `read_mask()` read them again).
    `ellipse_px` is in pixel coordinates: the reference ellipse for an HC18 outline, else the fit
    to the filled mask's boundary (or to an open outline's pixels). `mask_source` says how the
    mask was made (see `core.label_masks`): "hc18-outline", "outline" (a closed contour,
    filled), "open-outline" (the ellipse fitted to an outline with a gap) or "filled";
    `mask_label` is the label taken from a label map, None for a binary mask.
    """

    image_path: Path
    mask_path: Path
    image: np.ndarray | None
    mask: np.ndarray | None
    patient: str
    spacing: Spacing
    ellipse_px: Ellipse | None
    mask_source: str = "filled"
    mask_label: int | None = None

    def describe(self) -> str:
        """How the label of this frame was made, in words."""
        return describe_source(self.mask_source, self.mask_label)

    def read_image(self) -> np.ndarray:
        if self.image is not None:
            return self.image
        return read_frame(self.image_path, 0).pixels

    def read_mask(self) -> np.ndarray:
        if self.mask is not None:
            return self.mask
        hc18 = self.mask_source == SOURCE_HC18
        return label_from_grey(read_mask_levels(self.mask_path), hc18, True, self.mask_label).mask


@dataclass
class UnlabelledFrame:
    """One frame without a label (a still, or frame `index` of a DICOM/video cine).

    `image` is (H, W) float32 0..1, or None with `load_pixels=False` (see `read_image()`).
    Kept apart from `LabelledPair` so that code handed a pair can always rely on its mask.
    """

    image_path: Path
    index: int
    image: np.ndarray | None
    patient: str
    spacing: Spacing

    def read_image(self) -> np.ndarray:
        if self.image is not None:
            return self.image
        return read_frame(self.image_path, self.index).pixels


@dataclass
class ImportResult:
    """`pairs` of a labelled import ("hc18" / "images-masks" layout), or `unlabelled` frames of
    an unlabelled import (layout "unlabelled"); `problems` lists what was skipped and why."""

    pairs: list[LabelledPair]
    problems: list[ImportProblem]
    layout: str
    unlabelled: list[UnlabelledFrame] = field(default_factory=list)

    def report_lines(self) -> list[str]:
        """One line per frame, sorted by name: what was imported and how, or why not."""
        lines = [(p.image_path.name, f"imported: {p.describe()}") for p in self.pairs]
        lines += [(f.image_path.name, "imported: unlabelled frame") for f in self.unlabelled]
        lines += [(p.path.name, f"skipped: {p.problem}") for p in self.problems]
        return [f"{name}: {what}" for name, what in sorted(lines)]


# --- folders ---------------------------------------------------------------------------------


def _is_hc18_annotation(path: Path) -> bool:
    return path.stem.lower().endswith(HC18_ANNOTATION_SUFFIX.lower())


def _broken_links(folder: Path, recursive: bool = False) -> list[ImportProblem]:
    """Symbolic links in `folder` that lead nowhere (a missing target or a loop), one problem
    each: the listings below skip what is not a readable file, and these are worth a word.

    Hidden names are left out (the frame listing skips them too); links to folders are never
    followed.
    """
    problems = []
    for root, dirs, files in os.walk(folder) if recursive else [(folder, [], _names(folder))]:
        for name in sorted(files) + sorted(dirs):
            path = Path(root) / name
            if name.startswith(".") or not path.is_symlink():
                continue
            try:
                path.stat()
            except OSError as error:
                problems.append(ImportProblem(path, _link_problem(path, error)))
    return problems


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _link_problem(path: Path, error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "symbolic link loop"
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return f"broken symbolic link (its target {target} does not exist)"


def detect_layout(folder: Path) -> str:
    """ "images-masks" when `images/` and `masks/` exist, "hc18" when the folder holds
    `*_Annotation.png` files; DatasetLayoutError otherwise."""
    if (folder / "images").is_dir() and (folder / "masks").is_dir():
        return LAYOUT_IMAGES_MASKS
    if any(_is_hc18_annotation(p) for p in folder.glob("*.png")):
        return LAYOUT_HC18
    raise DatasetLayoutError(
        f"{folder.name}: no labelled layout found (expected NNN_HC.png with "
        "NNN_HC_Annotation.png, or images/ and masks/ folders)"
    )


def _find_pixel_csv(folder: Path, image_names: list[str]) -> Path | None:
    """The `*pixel_size*.csv` beside or inside `folder` meant for its images.

    HC18 keeps `training_set_pixel_size_and_HC.csv` and `test_set_pixel_size.csv` side by side
    and both name `001_HC.png` (different frames): a CSV whose name starts with the folder's
    name wins, then the one naming most of the images; one naming none is never chosen.
    """
    candidates = sorted(set(folder.parent.glob("*.csv")) | set(folder.glob("*.csv")))
    best, best_rank = None, (False, 0)
    for candidate in candidates:
        if "pixel_size" not in candidate.name.lower():
            continue
        try:
            sizes = read_pixel_csv(candidate)
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        hits = sum(lookup_csv_size(sizes, name) is not None for name in image_names)
        rank = (candidate.name.lower().startswith(folder.name.lower()), hits)
        if hits > 0 and rank > best_rank:
            best, best_rank = candidate, rank
    return best


def _hc18_pairs(folder: Path, problems: list[ImportProblem]) -> list[tuple[Path, Path]]:
    problems += _broken_links(folder)
    pngs = sorted(p for p in folder.glob("*") if p.is_file() and p.suffix.lower() == ".png")
    annotations = {p.stem.lower(): p for p in pngs if _is_hc18_annotation(p)}
    pairs = []
    for image in (p for p in pngs if not _is_hc18_annotation(p)):
        annotation = annotations.pop((image.stem + HC18_ANNOTATION_SUFFIX).lower(), None)
        if annotation is None:
            problems.append(ImportProblem(image, "image without mask (no _Annotation.png)"))
        else:
            pairs.append((image, annotation))
    for orphan in annotations.values():
        problems.append(ImportProblem(orphan, "mask without image"))
    return pairs


def _by_stem(paths: list[Path], what: str, problems: list[ImportProblem]) -> dict[str, Path]:
    by_stem: dict[str, list[Path]] = {}
    for path in paths:
        by_stem.setdefault(path.stem, []).append(path)
    unique = {}
    for stem, group in by_stem.items():
        if len(group) > 1:
            names = ", ".join(p.name for p in group)
            for path in group:
                problem = f"several {what} share the name {stem} ({names})"
                problems.append(ImportProblem(path, problem))
        else:
            unique[stem] = group[0]
    return unique


def _images_masks_pairs(folder: Path, problems: list[ImportProblem]) -> list[tuple[Path, Path]]:
    problems += _broken_links(folder / "images") + _broken_links(folder / "masks")
    images = _by_stem(
        [p for p in find_frame_files([folder / "images"]) if p.parent == folder / "images"],
        "images",
        problems,
    )
    mask_files = sorted(
        p
        for p in (folder / "masks").iterdir()
        if p.is_file() and p.suffix.lower() in STILL_SUFFIXES
    )
    masks = _by_stem(mask_files, "masks", problems)
    pairs = []
    for stem, image in sorted(images.items()):
        mask = masks.pop(stem, None)
        if mask is None:
            problems.append(ImportProblem(image, "image without mask"))
        else:
            pairs.append((image, mask))
    for orphan in masks.values():
        problems.append(ImportProblem(orphan, "mask without image"))
    return pairs


def _read_patients(folder: Path, problems: list[ImportProblem]) -> dict[str, str] | None:
    path = folder / PATIENTS_CSV
    if not path.is_file():
        return None
    try:
        return read_patients_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        problems.append(ImportProblem(path, f"ignored: {error}"))
        return None


def _read_csv_sizes(
    pixel_csv: Path | None, folder: Path, image_names: list[str], problems: list[ImportProblem]
) -> dict[str, float] | None:
    path = Path(pixel_csv) if pixel_csv is not None else _find_pixel_csv(folder, image_names)
    if path is None:
        return None
    try:
        return read_pixel_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        problems.append(ImportProblem(path, f"pixel sizes ignored: {error}"))
        return None


def _load_pair(
    image_path: Path,
    mask_path: Path,
    hc18: bool,
    patients: dict[str, str] | None,
    csv_sizes: dict[str, float] | None,
    pixel_mm: float | None,
    load_pixels: bool,
    mask_label: int | None = None,
) -> LabelledPair:
    """Read and check one pair; raises FrameReadError (with the file)."""
    frame = read_frame(image_path, 0)
    if frame.n_frames > 1:
        raise FrameReadError(image_path, f"has {frame.n_frames} frames; a labelled image is one")
    grey_mask = read_mask_levels(mask_path)
    if grey_mask.shape != frame.pixels.shape:
        raise FrameReadError(
            mask_path,
            f"size mismatch: mask is {grey_mask.shape[1]}x{grey_mask.shape[0]}, "
            f"image {image_path.name} is {frame.pixels.shape[1]}x{frame.pixels.shape[0]}",
        )
    spacing = spacing_for_file(image_path, csv_sizes, pixel_mm)
    try:
        label = label_from_grey(grey_mask, hc18, want_mask=load_pixels, mask_label=mask_label)
    except LabelProblem as problem:
        raise FrameReadError(mask_path, str(problem)) from None
    return LabelledPair(
        image_path=image_path,
        mask_path=mask_path,
        image=frame.pixels if load_pixels else None,
        mask=label.mask if load_pixels else None,
        patient=patient_id(image_path.name, patients),
        spacing=spacing,
        ellipse_px=label.ellipse,
        mask_source=label.source,
        mask_label=mask_label,
    )


def import_labelled_folder(
    folder: str | Path,
    pixel_csv: Path | None = None,
    pixel_mm: float | None = None,
    load_pixels: bool = True,
    mask_label: int | None = None,
) -> ImportResult:
    """Import every image/mask pair of `folder` (layout detected, see the module docstring).

    `mask_label` picks the head out of label-map masks (see `core.label_masks`); a label map
    without it is refused per frame, with the values it holds.
    Spacing per image follows `spacing_for_file`: `pixel_mm` > `pixel_csv` (found automatically
    as a `*pixel_size*.csv` beside or inside the folder when not given) > DICOM > uncalibrated.
    Patients come from `patients.csv` in the folder when present (see `patient_id`).
    With `load_pixels=False` every file is still read and checked, but the arrays are not kept
    (a whole HC18 training set would take about 1.7 GB).
    Raises DatasetLayoutError when the folder has neither layout.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetLayoutError(f"{folder.name}: not a folder")
    layout = detect_layout(folder)
    problems: list[ImportProblem] = []
    hc18 = layout == LAYOUT_HC18
    pair_paths = _hc18_pairs(folder, problems) if hc18 else _images_masks_pairs(folder, problems)
    patients = _read_patients(folder, problems)
    csv_sizes = _read_csv_sizes(pixel_csv, folder, [p.name for p, _ in pair_paths], problems)
    pairs = []
    for image_path, mask_path in pair_paths:
        try:
            pairs.append(
                _load_pair(
                    image_path,
                    mask_path,
                    hc18,
                    patients,
                    csv_sizes,
                    pixel_mm,
                    load_pixels,
                    mask_label,
                )
            )
        except FrameReadError as error:
            problems.append(ImportProblem(error.path, error.problem))
    return ImportResult(pairs=pairs, problems=problems, layout=layout)


def import_unlabelled_folder(
    folder: str | Path,
    pixel_csv: Path | None = None,
    pixel_mm: float | None = None,
    load_pixels: bool = True,
) -> ImportResult:
    """Every frame under `folder` (recursively; stills, DICOM and video, one `UnlabelledFrame`
    per frame of a cine) as `ImportResult.unlabelled`, layout "unlabelled".

    Annotation images and files under a `masks/` folder are skipped. Spacing and patients as in
    `import_labelled_folder`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetLayoutError(f"{folder.name}: not a folder")
    problems: list[ImportProblem] = _broken_links(folder, recursive=True)
    files = [
        p for p in find_frame_files([folder]) if "masks" not in p.relative_to(folder).parts[:-1]
    ]
    patients = _read_patients(folder, problems)
    csv_sizes = _read_csv_sizes(pixel_csv, folder, [p.name for p in files], problems)
    frames: list[UnlabelledFrame] = []
    for path in files:
        try:
            spacing = spacing_for_file(path, csv_sizes, pixel_mm)
            patient = patient_id(path.name, patients)
            if load_pixels:
                for frame in load_frames(path):
                    frames.append(
                        UnlabelledFrame(path, frame.index, frame.pixels, patient, spacing)
                    )
            else:
                read_frame(path, 0)  # a file that cannot be decoded is a problem now, not later
                for index in range(count_frames(path)):
                    frames.append(UnlabelledFrame(path, index, None, patient, spacing))
        except FrameReadError as error:
            problems.append(ImportProblem(error.path, error.problem))
    return ImportResult(pairs=[], problems=problems, layout=LAYOUT_UNLABELLED, unlabelled=frames)
