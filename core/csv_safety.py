"""CSV cells that a spreadsheet would run as a formula are written with a leading apostrophe.

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return (a file may be called
`=HYPERLINK(...).png`) is a formula to Excel, LibreOffice and Google Sheets: CSV injection. The
common defence, used here, writes such a cell as `'` + text, which a spreadsheet shows as text.
Numbers stay numbers: a cell that is a plain decimal number (`-1.5`, `+2e-3`) is left alone.

To read back exactly what was written, a cell that already starts with apostrophes followed by
one of those characters gets one more, and `restore_cell` takes exactly one away.

Every CSV writer of the project goes through `SafeDictWriter` or `safe_writer`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from typing import IO, Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_NEUTRALISED = re.compile(r"'+[=+\-@\t\r]")


def _needs_apostrophe(text: str) -> bool:
    if _NEUTRALISED.match(text):
        return True
    return text.startswith(FORMULA_STARTS) and _NUMBER.fullmatch(text) is None


def neutralise_cell(value: Any) -> Any:
    """`value` with a leading apostrophe when it is text a spreadsheet would run as a formula;
    anything else (numbers, None, other text) unchanged."""
    if isinstance(value, str) and _needs_apostrophe(value):
        return "'" + value
    return value


def restore_cell(text: str) -> str:
    """The text `neutralise_cell` was given, from the cell it wrote."""
    return text[1:] if _NEUTRALISED.match(text) else text


class SafeDictWriter(csv.DictWriter):
    """`csv.DictWriter` whose every cell (header included) goes through `neutralise_cell`."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({key: neutralise_cell(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:
            self.writerow(row)


class _SafeWriter:
    def __init__(self, handle: IO[str], **options: Any) -> None:
        self._writer = csv.writer(handle, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([neutralise_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def safe_writer(handle: IO[str], **options: Any) -> _SafeWriter:
    """`csv.writer(handle, **options)` whose every cell goes through `neutralise_cell`."""
    return _SafeWriter(handle, **options)
