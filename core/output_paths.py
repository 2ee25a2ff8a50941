"""Output paths are checked before a batch starts, so that no output ever destroys data.

A command names its outputs ({option: path}) and its inputs; `check_outputs` refuses, with a
message naming the option and the path, an output that:

* is one of the inputs (frames, pixel CSV, model, files of a labelled folder), also through a
  link or a second hard link;
* is the same path as another output;
* is a symbolic link: HC Studio never writes through a link (give the link's target instead);
* exists and is not a regular file (a folder, a device, a pipe) where a file is written, or not
  a folder where a folder is written;
* lies in a folder that does not exist or cannot be written.

`partial_path` is where a batch that stops early puts the rows it measured (beside the output).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that must not be written; the message names the option and the path."""


def partial_path(path: str | Path) -> Path:
    """The file beside `path` for the rows of a batch that stopped early:
    `measurements.csv` -> `measurements.partial.csv`."""
    path = Path(path)
    return path.with_name(f"{path.stem}.partial{path.suffix}")


@dataclass(frozen=True)
class _Output:
    option: str
    path: Path
    is_folder: bool


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing path after links, else None."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _refuse(output: _Output, problem: str) -> OutputPathError:
    return OutputPathError(f"{output.option} {output.path}: {problem}")


def _check_kind(output: _Output) -> None:
    path = output.path
    if path.is_symlink():
        target = os.readlink(path)
        raise _refuse(
            output,
            f"is a symbolic link (to {target}); HC Studio does not write through links, "
            "give the path of the target itself",
        )
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None:
        if output.is_folder and not stat.S_ISDIR(mode):
            raise _refuse(output, "exists and is not a folder")
        if not output.is_folder and stat.S_ISDIR(mode):
            raise _refuse(output, "is a folder; give a file name")
        if not output.is_folder and not stat.S_ISREG(mode):
            raise _refuse(output, "is not a regular file (a device, pipe or socket)")
    folder = path if output.is_folder and mode is not None else path.parent
    if not folder.is_dir():
        raise _refuse(output, f"the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _refuse(output, f"the folder {folder} is not writable")


def check_outputs(
    files: Mapping[str, Path | None],
    inputs: Iterable[Path],
    folders: Mapping[str, Path | None] | None = None,
) -> None:
    """Raise OutputPathError for the first output in `files` (written as files) or `folders`
    (written into) that must not be written (see the module docstring). None means not given.

    A folder output must not hold any input file either: what is written there would mix with
    (and could replace) the inputs.
    """
    outputs = [_Output(option, Path(path), False) for option, path in files.items() if path]
    outputs += [
        _Output(option, Path(path), True) for option, path in (folders or {}).items() if path
    ]
    input_paths = [Path(path) for path in inputs]
    input_real = {os.path.realpath(path) for path in input_paths}
    input_ids = {identity for identity in map(_identity, input_paths) if identity is not None}
    # The folder an input lies in, and the folder of its target when it is a link.
    input_parents = {os.path.realpath(path.absolute().parent) for path in input_paths}
    input_parents |= {os.path.dirname(real) for real in input_real}
    seen: dict[str, str] = {}
    for output in outputs:
        _check_kind(output)
        real = os.path.realpath(output.path)
        if real in input_real or (not output.is_folder and _identity(output.path) in input_ids):
            raise _refuse(output, "is one of the inputs; it would be overwritten")
        if output.is_folder and real in input_parents:
            raise _refuse(output, "holds input files; the outputs would mix with them")
        if real in seen:
            raise OutputPathError(f"{seen[real]} and {output.option} name the same path {real}")
        seen[real] = output.option


def labelled_folder_inputs(folder: Path) -> list[Path]:
    """The files a labelled-folder import may read: every file under `folder` and the pixel
    CSVs beside it (`*pixel_size*.csv`, which the import looks for when none is given)."""
    inside = [path for path in folder.rglob("*") if path.is_file()] if folder.is_dir() else []
    beside = [p for p in folder.parent.glob("*.csv") if "pixel_size" in p.name.lower()]
    return inside + beside
