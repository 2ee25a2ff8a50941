"""Pixel spacing of a frame: which source applies (`SpacingPolicy`), pixel-size CSVs and
two-point calibration.

The order, most explicit first (the one place it is decided):

1. a spacing set for one file (a two-point calibration, a size typed for that file);
2. a size given for every file (`--pixel-size`, a size typed for all files);
3. the row for the file's name in a pixel-size CSV, when the CSV applies to the file: it sits
   in the CSV's own folder, or is one of the files / inside one of the folders the CSV was given
   with (a CSV never calibrates a file elsewhere that happens to share a name);
4. the file's own header: the DICOM ultrasound region that calibrates the image, else DICOM
   PixelSpacing (read by `core.io.dicom.spacing_from_dicom`, which passes over what it cannot
   trust and says why);
5. uncalibrated: lengths in pixels.

Every pixel size from a person, a CSV or a header must lie in `PLAUSIBLE_PIXEL_MM`.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .spacing_value import (
    PLAUSIBLE_PIXEL_MM,
    SOURCES,
    Spacing,
    check_pixel_size,
    pixel_size_problem,
)

__all__ = [
    "FILENAME_COLUMNS",
    "PIXEL_SIZE_COLUMNS",
    "PLAUSIBLE_PIXEL_MM",
    "SOURCES",
    "PixelSizeRow",
    "PixelSizeTable",
    "Spacing",
    "SpacingPolicy",
    "calibrate_two_points",
    "check_pixel_size",
    "lookup_csv_size",
    "pixel_size_problem",
    "read_pixel_csv",
    "read_pixel_table",
    "spacing_for_file",
    "user_spacing",
]

# Column names accepted in a pixel-size CSV, compared ignoring case, spaces, "_" and "-".
# The HC18 header is `filename,pixel size(mm)[,head circumference (mm)]`.
FILENAME_COLUMNS = ("filename", "file", "name", "file name", "image")
PIXEL_SIZE_COLUMNS = ("pixel size(mm)", "pixel_size_mm", "pixel size", "pixel size mm")


def _column_key(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch not in " _-\t\ufeff")


@dataclass(frozen=True)
class PixelSizeRow:
    """One row of a pixel-size CSV: a file name, its pixel size and the row it is on (the
    spreadsheet row: the header is row 1)."""

    name: str
    mm: float
    row: int


class PixelSizeTable(Mapping[str, float]):
    """A pixel-size CSV read by column names: {file name: mm}, each with the row it came from.

    Names match exactly, then ignoring case. Build it with `read_pixel_table`.
    """

    def __init__(self, rows: Iterable[PixelSizeRow], path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._rows: dict[str, PixelSizeRow] = {}
        self._folded: dict[str, PixelSizeRow] = {}
        for row in rows:
            self._rows.setdefault(row.name, row)
            self._folded.setdefault(row.name.casefold(), row)

    @classmethod
    def from_mapping(cls, sizes: Mapping[str, float]) -> PixelSizeTable:
        """A table from {file name: mm} (no file behind it: rows are counted from 2)."""
        if isinstance(sizes, PixelSizeTable):
            return sizes
        rows = [
            PixelSizeRow(name, float(mm), row) for row, (name, mm) in enumerate(sizes.items(), 2)
        ]
        return cls(rows)

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else "pixel-size table"

    def row_for(self, path: str | Path) -> PixelSizeRow | None:
        """The row for `path`'s file name (exact, then ignoring case), or None."""
        name = Path(path).name
        return self._rows.get(name) or self._folded.get(name.casefold())

    def spacing(self, row: PixelSizeRow) -> Spacing:
        return Spacing.square(row.mm, "csv", f"{self.name} row {row.row}")

    def __getitem__(self, name: str) -> float:
        return self._rows[name].mm

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"PixelSizeTable({self.name!r}, {len(self)} rows)"


def _find_column(header: list[str], accepted: tuple[str, ...]) -> int | None:
    keys = [_column_key(cell) for cell in header]
    for alias in map(_column_key, accepted):
        if alias in keys:
            return keys.index(alias)
    return None


def _csv_text(path: Path) -> str:
    """The CSV's text (UTF-8, with or without a byte order mark); ValueError naming the file
    when it is not text."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a text CSV (byte {error.start} is not UTF-8 text)") from None


def read_pixel_table(path: str | Path) -> PixelSizeTable:
    """Read a pixel-size CSV by its column names (`FILENAME_COLUMNS`, `PIXEL_SIZE_COLUMNS`).

    Raises ValueError naming the file (and row) for: no recognisable columns (naming the columns
    found), a size that is not a number or lies outside `PLAUSIBLE_PIXEL_MM`, and two rows for
    the same file (ignoring case) that disagree. Identical repeated rows and blank lines are fine.
    """
    path = Path(path)
    rows: dict[str, PixelSizeRow] = {}
    with io.StringIO(_csv_text(path), newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        found = ", ".join(repr(cell) for cell in header or []) or "none"
        name_col = _find_column(header or [], FILENAME_COLUMNS)
        size_col = _find_column(header or [], PIXEL_SIZE_COLUMNS)
        if name_col is None or size_col is None:
            missing = "file name" if name_col is None else "pixel size"
            accepted = FILENAME_COLUMNS if name_col is None else PIXEL_SIZE_COLUMNS
            expected = ", ".join(accepted)
            raise ValueError(
                f"{path}: no {missing} column (one of {expected}); columns found: {found}"
            )
        for record in reader:
            row_no = reader.line_num
            name = record[name_col].strip() if len(record) > name_col else ""
            if not name:
                continue
            cell = record[size_col].strip() if len(record) > size_col else ""
            try:
                mm = float(cell)
            except ValueError:
                raise ValueError(
                    f"{path}:{row_no}: pixel size of {name} is not a number: {cell!r}"
                ) from None
            check_pixel_size(mm, f"{path}:{row_no}: {name}")
            key = name.casefold()
            earlier = rows.get(key)
            if earlier is not None and not math.isclose(earlier.mm, mm, rel_tol=1e-9):
                raise ValueError(
                    f"{path}: rows {earlier.row} and {row_no} give {name} different pixel sizes "
                    f"({earlier.mm:g} and {mm:g} mm)"
                )
            rows.setdefault(key, PixelSizeRow(name, mm, row_no))
    return PixelSizeTable(rows.values(), path)


def read_pixel_csv(path: str | Path) -> PixelSizeTable:
    """`read_pixel_table` (the name callers used when it returned a plain dict)."""
    return read_pixel_table(path)


def lookup_csv_size(csv_sizes: Mapping[str, float] | None, path: str | Path) -> float | None:
    """The pixel size for `path` in a {filename: mm} mapping: exact name, then ignoring case.

    Matches by name alone: the caller must know the mapping is meant for `path`
    (`SpacingPolicy` checks that).
    """
    if not csv_sizes:
        return None
    row = PixelSizeTable.from_mapping(csv_sizes).row_for(path)
    return None if row is None else row.mm


def user_spacing(mm: float, where: str = "pixel size") -> Spacing:
    """A square spacing a person gave; ValueError naming `where` when implausible."""
    return Spacing.square(check_pixel_size(mm, where), "user", f"{where}: {float(mm):g} mm")


def calibrate_two_points(
    p1_xy: tuple[float, float], p2_xy: tuple[float, float], distance_mm: float
) -> Spacing:
    """Square spacing from two points (pixel x, y) a known distance apart (e.g. a depth ruler)."""
    length_px = math.hypot(p2_xy[0] - p1_xy[0], p2_xy[1] - p1_xy[1])
    if length_px <= 0:
        raise ValueError("the two calibration points are the same point")
    if not distance_mm > 0:
        raise ValueError(f"the known distance must be positive, got {distance_mm}")
    mm = check_pixel_size(distance_mm / length_px, f"{distance_mm:g} mm over {length_px:.1f} px")
    return Spacing(
        mm, mm, "calibration", f"two points {length_px:.1f} px apart = {distance_mm:g} mm"
    )


def _absolute(path: str | Path) -> Path:
    return Path(os.path.abspath(path))


@dataclass(frozen=True)
class _ScopedTable:
    """A table and the files it applies to: its own folder, and `roots` (files, or folders
    with everything under them)."""

    table: PixelSizeTable
    roots: frozenset[Path]

    def applies_to(self, path: Path) -> bool:
        if self.table.path is not None and path.parent == _absolute(self.table.path).parent:
            return True
        # Look the path and its few parents up in the set: going through every root for every
        # file made a batch of n named files cost n^2 comparisons (5 s for 335 files).
        return path in self.roots or any(parent in self.roots for parent in path.parents)


class SpacingPolicy:
    """Decides the spacing of each frame file (the order is in this module's docstring).

    Holds the choices that apply across files: spacings set per file, one size given for all
    files, and pixel-size CSVs with the files they apply to. One instance can live as long as a
    window: change it with `set_for_file`, `set_given`, `add_table`, `clear_tables`.
    """

    def __init__(self, given: Spacing | float | None = None) -> None:
        self._per_file: dict[Path, Spacing] = {}
        self._given: Spacing | None = None
        self._tables: list[_ScopedTable] = []
        self.set_given(given)

    @classmethod
    def for_batch(
        cls,
        paths: Iterable[str | Path],
        given: Spacing | float | None = None,
        csv_sizes: Mapping[str, float] | None = None,
    ) -> SpacingPolicy:
        """A policy for one batch over `paths` (files and folders): `given` for every file, and
        `csv_sizes` (a `PixelSizeTable` or {name: mm}) applying to `paths`."""
        policy = cls(given)
        if csv_sizes:
            policy.add_table(PixelSizeTable.from_mapping(csv_sizes), applies_to=paths)
        return policy

    # Choices -----------------------------------------------------------------------------------
    @property
    def given(self) -> Spacing | None:
        return self._given

    def set_given(self, given: Spacing | float | None) -> None:
        """The size for every file (mm or a Spacing); None forgets it. ValueError if implausible."""
        if given is None or isinstance(given, Spacing):
            self._given = None if given is None else _checked(given)
        else:
            self._given = user_spacing(given, "pixel size for every file")

    def set_for_file(self, path: str | Path, spacing: Spacing | None) -> None:
        """A calibration or typed size for one file; None forgets it. ValueError if implausible."""
        if spacing is None:
            self._per_file.pop(_absolute(path), None)
        else:
            self._per_file[_absolute(path)] = _checked(spacing)

    def for_file(self, path: str | Path) -> Spacing | None:
        """The spacing set for this one file, if any."""
        return self._per_file.get(_absolute(path))

    def add_table(self, table: PixelSizeTable, applies_to: Iterable[str | Path] = ()) -> None:
        """Use `table` for the files in its own folder and for `applies_to` (files, or folders
        with everything under them). A table added later wins over earlier ones."""
        roots = frozenset(_absolute(p) for p in applies_to)
        self._tables.insert(0, _ScopedTable(table, roots))

    def clear_tables(self) -> None:
        self._tables.clear()

    @property
    def tables(self) -> list[PixelSizeTable]:
        return [scoped.table for scoped in self._tables]

    # Decisions ---------------------------------------------------------------------------------
    def override_for(self, path: str | Path) -> Spacing | None:
        """The spacing that beats the file's own header (sources 1-3), or None."""
        path = _absolute(path)
        if path in self._per_file:
            return self._per_file[path]
        if self._given is not None:
            return self._given
        for scoped in self._tables:
            if scoped.applies_to(path):
                row = scoped.table.row_for(path)
                if row is not None:
                    return scoped.table.spacing(row)
        return None

    def spacing_for(self, path: str | Path, own: Spacing | None = None) -> Spacing:
        """The spacing of `path`'s frames. `own` is the file's header spacing when already read
        (a `Frame`'s spacing from `core.io` without override); else the DICOM header is read."""
        override = self.override_for(path)
        if override is not None:
            return override
        if own is not None:
            return own
        from .io.dicom import is_dicom, read_dicom_spacing  # lazy: keeps Spacing users light

        return read_dicom_spacing(path) if is_dicom(path) else Spacing.uncalibrated()

    def matched_files(self, files: Iterable[str | Path]) -> list[tuple[PixelSizeTable, list[Path]]]:
        """Each table with the files among `files` that it calibrates (files whose spacing
        comes from a more explicit source are not counted)."""
        matched: list[tuple[PixelSizeTable, list[Path]]] = [(s.table, []) for s in self._tables]
        for file in map(Path, files):
            override = self.override_for(file)
            if override is None or override.source != "csv":
                continue
            for (_table, hits), scoped in zip(matched, self._tables):
                if scoped.applies_to(_absolute(file)) and scoped.table.row_for(file) is not None:
                    hits.append(file)
                    break
        return matched

    def unused_tables(self, files: Iterable[str | Path]) -> list[PixelSizeTable]:
        """Tables that calibrate none of `files` (worth a warning: a wrong CSV or folder)."""
        return [table for table, hits in self.matched_files(files) if not hits]


def _checked(spacing: Spacing) -> Spacing:
    if spacing.calibrated:
        for mm in {spacing.row_mm, spacing.col_mm}:
            check_pixel_size(mm, spacing.detail or f"{spacing.source} pixel size")
    return spacing


def spacing_for_file(
    path: str | Path, csv_sizes: Mapping[str, float] | None = None, user_mm: float | None = None
) -> Spacing:
    """The spacing of one file under `SpacingPolicy`, for a caller that chose `csv_sizes` for
    this very file (the labelled-folder import picks the CSV of its folder): `user_mm` >
    `csv_sizes` by name > the file's DICOM header > uncalibrated."""
    policy = SpacingPolicy(user_mm)
    if csv_sizes:
        policy.add_table(PixelSizeTable.from_mapping(csv_sizes), applies_to=[path])
    return policy.spacing_for(path)
