"""Training data: frames decoded and resized once per run into an in-memory tensor cache.

Images are stored as `(N, 1, h, w)` uint8 at the training size, masks as `(N, 1, h, w)` uint8 in
{0, 1}. Masks of HC18-style annotations are the reference ellipse rasterised directly at the
training size (an unbiased target); other masks are area-resized from the full-resolution mask
and thresholded at 0.5. The prepared sets can be persisted (`RUN_DIR/cache.npz`), keyed by the
folders' file listing and the options, so `--resume` does not decode again.

`InfiniteSampler` draws batches from a seeded torch.Generator, sharded by rank; its state is
checkpointed so a resumed run draws the same batches as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..atomic import atomic_write
from ..dataset import (
    ImportProblem,
    LabelledPair,
    UnlabelledFrame,
    import_labelled_folder,
    import_unlabelled_folder,
)
from ..ellipse import Ellipse, rasterize_ellipse
from ..io import FrameReadError
from ..spacing import Spacing
from ..split import labelled_subset_by_patient, split_by_patient

CACHE_VERSION = 1


class NoLabelledDataError(ValueError):
    """No usable labelled frame for training; str() says where and why."""


@dataclass(frozen=True)
class DataOptions:
    labelled_dir: Path
    image_size: tuple[int, int]  # (h, w) of the network input
    unlabelled_dir: Path | None = None
    val_dir: Path | None = None
    val_fraction: float = 0.2
    labelled_fraction: float = 1.0
    pixel_csv: Path | None = None
    seed: int = 0
    mask_label: int | None = None
    # Labelled image names left out of the run altogether (a cross-validation fold's frames,
    # judged by this run's model, so it must neither train nor choose its checkpoint on them).
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class FrameInfo:
    """Where a cached frame came from; `ellipse_px` (frame pixels) only for labelled frames."""

    path: str
    index: int
    patient: str
    spacing: Spacing
    frame_shape: tuple[int, int]  # (H, W) of the original frame
    ellipse_px: Ellipse | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FrameInfo:
        ellipse = data.get("ellipse_px")
        return cls(
            path=data["path"],
            index=int(data["index"]),
            patient=data["patient"],
            spacing=Spacing(**data["spacing"]),
            frame_shape=tuple(data["frame_shape"]),
            ellipse_px=Ellipse(**ellipse) if ellipse else None,
        )


@dataclass
class FrameSet:
    """Frames at the training size. images: (N, 1, h, w) uint8; masks: same or None."""

    images: torch.Tensor
    masks: torch.Tensor | None
    infos: list[FrameInfo]

    def __len__(self) -> int:
        return len(self.infos)


@dataclass
class PreparedData:
    labelled: FrameSet
    unlabelled: FrameSet
    validation: FrameSet
    problems: list[ImportProblem] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "labelled": len(self.labelled),
            "unlabelled": len(self.unlabelled),
            "validation": len(self.validation),
            "skipped": len(self.problems),
        }


StatusCallback = Callable[[str], None]


# ---------------------------------------------------------------- resizing


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) float 0..1 -> (h, w) uint8, area-averaged when shrinking."""
    h, w = size
    shrinking = h <= image.shape[0] and w <= image.shape[1]
    method = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(np.asarray(image, dtype=np.float32), (w, h), interpolation=method)
    return np.clip(np.rint(resized * 255.0), 0, 255).astype(np.uint8)


def ellipse_at_size(
    ellipse_px: Ellipse, frame_shape: tuple[int, int], size: tuple[int, int]
) -> Ellipse:
    """The frame-pixel ellipse in the coordinates of the frame resized to `size` (h, w).

    Same pixel-centre convention as cv2.resize: x_small = (x + 0.5) * w / W - 0.5 (y alike).
    """
    sy, sx = size[0] / frame_shape[0], size[1] / frame_shape[1]
    scaled = ellipse_px.scaled(sx, sy)
    return dataclasses.replace(scaled, cx=scaled.cx + 0.5 * sx - 0.5, cy=scaled.cy + 0.5 * sy - 0.5)


def target_mask(pair: LabelledPair, frame_shape: tuple[int, int], size: tuple[int, int]):
    """(h, w) uint8 {0, 1} training target for a labelled pair (see the module docstring)."""
    if pair.mask_source == "hc18-outline" and pair.ellipse_px is not None:
        return rasterize_ellipse(ellipse_at_size(pair.ellipse_px, frame_shape, size), size).astype(
            np.uint8
        )
    mask = np.asarray(pair.read_mask(), dtype=np.float32)
    area = cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return (area > 0.5).astype(np.uint8)


# ---------------------------------------------------------------- building the sets


def _labelled_set(
    pairs: Sequence[LabelledPair], size: tuple[int, int], problems: list[ImportProblem]
) -> FrameSet:
    images, masks, infos = [], [], []
    for pair in pairs:
        try:
            image = pair.read_image()
            shape = (int(image.shape[0]), int(image.shape[1]))
            mask = target_mask(pair, shape, size)
        except FrameReadError as error:
            problems.append(ImportProblem(error.path, error.problem))
            continue
        except Exception as error:  # noqa: BLE001 (the file changed since the import checked it)
            problems.append(ImportProblem(pair.mask_path, str(error)))
            continue
        images.append(resize_image(image, size))
        masks.append(mask)
        infos.append(
            FrameInfo(str(pair.image_path), 0, pair.patient, pair.spacing, shape, pair.ellipse_px)
        )
    return FrameSet(_stack(images, size), _stack(masks, size), infos)


def unlabelled_set(
    frames: Sequence[LabelledPair | UnlabelledFrame],
    size: tuple[int, int],
    problems: list[ImportProblem],
) -> FrameSet:
    """`frames` decoded and resized to `size` as the trainer caches them (no masks); a frame
    that cannot be read goes to `problems` and is left out."""
    images, infos = [], []
    for frame in frames:
        try:
            image = frame.read_image()
        except FrameReadError as error:
            problems.append(ImportProblem(error.path, error.problem))
            continue
        path = frame.image_path
        index = getattr(frame, "index", 0)
        shape = (int(image.shape[0]), int(image.shape[1]))
        images.append(resize_image(image, size))
        infos.append(FrameInfo(str(path), index, frame.patient, frame.spacing, shape))
    return FrameSet(_stack(images, size), None, infos)


def _stack(arrays: list[np.ndarray], size: tuple[int, int]) -> torch.Tensor:
    if not arrays:
        return torch.zeros((0, 1, *size), dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays)[:, None].copy())


def prepare_data(
    options: DataOptions,
    cache_path: Path | None = None,
    status: StatusCallback = lambda message: None,
) -> PreparedData:
    """Import, split, decode and resize every frame once (or load them from `cache_path`).

    Validation: `val_dir` when given, else `val_fraction` of the labelled patients (seeded).
    `labelled_fraction` < 1 keeps that fraction of the training patients labelled; the others'
    frames join the unlabelled stream. Raises NoLabelledDataError when no labelled training frame
    is left; unreadable files end up in `problems` and are skipped.
    """
    key = cache_key(options)
    if cache_path is not None:
        cached = load_cache(cache_path, key, status, tuple(options.image_size))
        if cached is not None:
            status(f"loaded {sum(cached.counts().values())} cached frames")
            return cached
    prepared = _prepare(options, status)
    if cache_path is not None:
        status("saving the frame cache")
        save_cache(cache_path, key, prepared)
    return prepared


def _prepare(options: DataOptions, status: StatusCallback) -> PreparedData:
    size = tuple(options.image_size)
    status(f"reading labelled frames in {options.labelled_dir.name}")
    imported = import_labelled_folder(
        options.labelled_dir,
        pixel_csv=options.pixel_csv,
        load_pixels=False,
        mask_label=options.mask_label,
    )
    problems = list(imported.problems)
    if options.exclude:
        left_out = set(options.exclude)
        imported = dataclasses.replace(
            imported, pairs=[p for p in imported.pairs if p.image_path.name not in left_out]
        )
    if not imported.pairs:
        raise NoLabelledDataError(
            f"{options.labelled_dir.name}: no usable labelled frame"
            + (f" ({len(problems)} files skipped)" if problems else "")
        )
    train_pairs, val_pairs = _validation_split(imported.pairs, options, problems, status)
    labelled_pairs, demoted = train_pairs, []
    if options.labelled_fraction < 1.0:
        labelled_pairs, demoted = labelled_subset_by_patient(
            train_pairs, options.labelled_fraction, options.seed
        )
    if not labelled_pairs:
        raise NoLabelledDataError(
            f"{options.labelled_dir.name}: no labelled frame left for training after the "
            "validation split and --labeled-fraction"
        )
    unlabelled_frames: list[LabelledPair | UnlabelledFrame] = list(demoted)
    if options.unlabelled_dir is not None:
        status(f"reading unlabelled frames in {options.unlabelled_dir.name}")
        extra = import_unlabelled_folder(
            options.unlabelled_dir, pixel_csv=options.pixel_csv, load_pixels=False
        )
        problems += extra.problems
        unlabelled_frames += extra.unlabelled
    status(f"caching {len(labelled_pairs)} labelled frames at {size[0]}x{size[1]}")
    labelled = _labelled_set(labelled_pairs, size, problems)
    status(f"caching {len(val_pairs)} validation frames")
    validation = _labelled_set(val_pairs, size, problems)
    status(f"caching {len(unlabelled_frames)} unlabelled frames")
    unlabelled = unlabelled_set(unlabelled_frames, size, problems)
    if len(labelled) == 0:
        raise NoLabelledDataError(f"{options.labelled_dir.name}: no readable labelled frame")
    return PreparedData(labelled, unlabelled, validation, problems)


def _validation_split(
    pairs: list[LabelledPair],
    options: DataOptions,
    problems: list[ImportProblem],
    status: StatusCallback,
) -> tuple[list[LabelledPair], list[LabelledPair]]:
    if options.val_dir is not None:
        status(f"reading validation frames in {options.val_dir.name}")
        val = import_labelled_folder(
            options.val_dir,
            pixel_csv=options.pixel_csv,
            load_pixels=False,
            mask_label=options.mask_label,
        )
        problems += val.problems
        return pairs, val.pairs
    if options.val_fraction <= 0:
        return pairs, []
    train, val = split_by_patient(pairs, options.val_fraction, options.seed)
    if not train:  # too few patients to hold some out: train on all, validate on none
        return pairs, []
    return train, val


# ---------------------------------------------------------------- persisted cache


def folder_fingerprint(folder: Path | None) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of every file under `folder`, sorted; [] for None."""
    if folder is None:
        return []
    listing = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            try:
                stat = path.stat()
            except OSError:
                # A broken link or a link loop: listed as the link itself (the import reports
                # it), so that mending it changes the key.
                try:
                    stat = path.lstat()
                except OSError:
                    continue  # removed while listing
            listing.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return sorted(listing)


def cache_key(options: DataOptions) -> str:
    """A hash of the options and of the listing of every folder (and CSV) they name."""
    described = {
        "version": CACHE_VERSION,
        "options": {k: str(v) for k, v in dataclasses.asdict(options).items()},
        "labelled": folder_fingerprint(options.labelled_dir),
        "unlabelled": folder_fingerprint(options.unlabelled_dir),
        "val": folder_fingerprint(options.val_dir),
    }
    if options.pixel_csv is not None and options.pixel_csv.exists():
        stat = options.pixel_csv.stat()
        described["pixel_csv"] = [stat.st_size, stat.st_mtime_ns]
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


_SETS = ("labelled", "unlabelled", "validation")


def save_cache(path: Path, key: str, data: PreparedData) -> None:
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {
        "key": key,
        "problems": [[str(p.path), p.problem] for p in data.problems],
    }
    for name in _SETS:
        frame_set: FrameSet = getattr(data, name)
        arrays[f"{name}_images"] = frame_set.images.numpy()
        if frame_set.masks is not None:
            arrays[f"{name}_masks"] = frame_set.masks.numpy()
        meta[f"{name}_infos"] = [info.to_json() for info in frame_set.infos]
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **arrays)


class _DamagedCache(ValueError):
    """The cache file is readable as a whole but its content is inconsistent."""


def load_cache(
    path: Path,
    key: str,
    status: StatusCallback = lambda message: None,
    image_size: tuple[int, int] | None = None,
) -> PreparedData | None:
    """The prepared data saved at `path` if it was saved under `key`, else None.

    A damaged cache (truncated or not a zip file, entries missing, arrays of the wrong shape or
    type) is reported through `status` and None is returned, so that it is rebuilt.
    """
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            if not isinstance(meta, dict):
                raise _DamagedCache("its description is not a JSON object")
            if meta.get("key") != key:
                return None  # another run's data or options: rebuilt without a word
            sets = {name: _cached_set(archive, meta, name, image_size) for name in _SETS}
            problems = [ImportProblem(Path(p), problem) for p, problem in meta["problems"]]
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, TypeError, ValueError) as error:
        status(f"{path.name}: damaged frame cache ({_cache_damage(error)}); rebuilding it")
        return None
    return PreparedData(**sets, problems=problems)


def _cached_set(
    archive: Any, meta: dict[str, Any], name: str, image_size: tuple[int, int] | None
) -> FrameSet:
    """One frame set of an open cache archive, its arrays checked against its frame list."""
    images = archive[f"{name}_images"]
    infos = [FrameInfo.from_json(info) for info in meta[f"{name}_infos"]]
    size = tuple(image_size) if image_size is not None else tuple(images.shape[2:])
    expected = (len(infos), 1, *size)
    if images.dtype != np.uint8 or images.shape != expected:
        raise _DamagedCache(f"{name} images are {images.dtype} {images.shape}, not {expected}")
    masks = None
    masks_name = f"{name}_masks"
    if masks_name in archive.files:
        masks = archive[masks_name]
        if masks.dtype != np.uint8 or masks.shape != expected:
            raise _DamagedCache(f"{name} masks are {masks.dtype} {masks.shape}, not {expected}")
        masks = torch.from_numpy(masks.copy())
    elif name != "unlabelled":
        raise _DamagedCache(f"no {masks_name}")
    return FrameSet(torch.from_numpy(images.copy()), masks, infos)


def _cache_damage(error: Exception) -> str:
    if isinstance(error, zipfile.BadZipFile | EOFError):
        return "truncated or not a cache file"
    if isinstance(error, KeyError):
        return f"no {error.args[0] if error.args else 'entry'}"
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return str(error) or type(error).__name__


# ---------------------------------------------------------------- sampling


class InfiniteSampler:
    """Endless batches of indices into N items: shuffled epochs from a seeded generator.

    Every rank draws the same permutations (same seed) and takes its own slice of each
    `world_size * batch_size` chunk, so the ranks see disjoint frames within a chunk. Epochs are
    concatenated, so N may be smaller than a batch.
    """

    def __init__(
        self, n_items: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        if n_items <= 0:
            raise ValueError("cannot sample from an empty set")
        self.n_items, self.batch_size = n_items, batch_size
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.zeros(0, dtype=torch.long)
        self.cursor = 0

    def next_indices(self) -> torch.Tensor:
        """(batch_size,) long indices for this rank."""
        need = self.batch_size * self.world_size
        while len(self.order) - self.cursor < need:
            fresh = torch.randperm(self.n_items, generator=self.generator)
            self.order = torch.cat([self.order[self.cursor :], fresh])
            self.cursor = 0
        chunk = self.order[self.cursor : self.cursor + need]
        self.cursor += need
        return chunk[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "order": self.order.clone(),
            "cursor": self.cursor,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"].clone()
        self.cursor = int(state["cursor"])


def network_pixel_mm(infos: Sequence[FrameInfo], size: tuple[int, int]) -> torch.Tensor | None:
    """(N,) millimetres per pixel of the network input (`size` = (h, w)) for each frame, the mean
    of its two axes; None when a frame has no pixel size (uncalibrated) or there is no frame.

    A frame resized from (H, W) to (h, w) has pixels (H/h) x (W/w) times its own: an error of
    one network pixel costs that many millimetres of the frame's HC.
    """
    if not infos or not all(info.spacing.calibrated for info in infos):
        return None
    h, w = size
    values = [
        (
            info.spacing.row_mm * info.frame_shape[0] / h
            + info.spacing.col_mm * info.frame_shape[1] / w
        )
        / 2
        for info in infos
    ]
    return torch.tensor(values, dtype=torch.float32)


def as_float(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B, 1, h, w) 0..255 -> float32 0..1 on `device`."""
    return images.to(device, non_blocking=True).float().div_(255.0)
