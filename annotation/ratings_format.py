"""The long ratings format: one row per (rater, item, target, criterion, score), as CSV.

Pure core (no Django): the rating targets, the columns and the one CSV reader that both the
annotation import (`annotation.rating_files`) and the statistics (`stats.ratings`) use. Each
caller then checks the values its own way (against a study, or column-wise for a million rows).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "COLUMNS",
    "TARGETS",
    "LongCsv",
    "SpreadsheetSafeWriter",
    "from_spreadsheet_safe",
    "read_long_csv",
    "spreadsheet_safe",
]

# What a rating is about: the generated question or the generated answer.
TARGETS = ("question", "answer")
COLUMNS = ("rater", "item", "target", "criterion", "score")


# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _quoted(text: str) -> bool:
    """A leading ' that `spreadsheet_safe` added (or that must be kept apart from one)."""
    return text[:1] == "'" and text[1:2] in (*FORMULA_START, "'") and text[1:2] != ""


def spreadsheet_safe(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text instead of running it as a formula.

    Text starting with = + - @ (or a tab or line break) gets a leading ' (OWASP's advice);
    numbers such as -1 stay as they are. Text that already starts with ' followed by one of
    those (or another ') gets one more, so `from_spreadsheet_safe` gives back exactly the value.
    """
    if not isinstance(value, str) or not value:
        return value
    if (value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value)) or _quoted(value):
        return "'" + value
    return value


def from_spreadsheet_safe(text: str) -> str:
    """The value that `spreadsheet_safe` wrote as `text` (text it did not change stays)."""
    return text[1:] if _quoted(text) else text


class SpreadsheetSafeWriter:
    """csv.writer whose every cell goes through `spreadsheet_safe` (all our CSV files)."""

    def __init__(self, stream: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(stream, **kwargs)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow([spreadsheet_safe(cell) for cell in row])


@dataclass(frozen=True)
class LongCsv:
    """A long-format CSV read, not yet checked.

    `header` is cleaned (stripped, lower-cased, no BOM); `missing` names required columns it
    lacks (then there are no rows). `columns` holds the five COLUMNS in order, one string per row
    ("" where a row is too short); `lines[i]` is row i's line in the file (its last line when a
    quoted field spans lines); `widths[i]` is how many fields row i had. Blank lines are skipped.
    """

    header: list[str]
    missing: list[str]
    columns: list[list[str]]
    lines: NDArray[np.int64]
    widths: list[int]

    @property
    def needed_width(self) -> int:
        """Fields a row needs to reach every column."""
        return max(self.header.index(c) for c in COLUMNS) + 1

    def short_rows(self) -> list[int]:
        """Indices of rows with fewer fields than `needed_width`."""
        need = self.needed_width
        return [i for i, width in enumerate(self.widths) if width < need]


def read_long_csv(text: str) -> LongCsv | None:
    """Read a long-format CSV (columns in any order, extra columns ignored); None if empty.

    Raises csv.Error (with `line` set to the line it stopped at) on malformed CSV.
    """
    reader = csv.reader(io.StringIO(text))
    try:
        first = next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        exc.line = 1  # type: ignore[attr-defined]
        raise
    header = [from_spreadsheet_safe(h.strip().lstrip("\ufeff")).lower() for h in first]
    missing = [c for c in COLUMNS if c not in header]
    empty_lines = np.zeros(0, dtype=np.int64)
    if missing:
        return LongCsv(header, missing, [[] for _ in COLUMNS], empty_lines, [])
    try:
        rows = list(reader)
        # A row's line is its index + 2 unless quoted fields span lines; counting newlines
        # tells, and only then do we pay for the line-tracking loop.
        n_lines = text.count("\n") + (0 if text.endswith("\n") else 1)
        if n_lines == len(rows) + 1:
            lines = np.arange(2, len(rows) + 2, dtype=np.int64)
        else:
            again = csv.reader(io.StringIO(text))
            next(again)
            rows, tracked = [], []
            for row in again:
                rows.append(row)
                tracked.append(again.line_num)
            lines = np.asarray(tracked, dtype=np.int64)
    except csv.Error as exc:
        exc.line = reader.line_num  # type: ignore[attr-defined]
        raise
    if "'" in text:  # cells our exports protected from spreadsheets: their exact values
        rows = [[from_spreadsheet_safe(cell) for cell in row] for row in rows]
    keep = [i for i, row in enumerate(rows) if len(row) > 1 or (row and row[0].strip())]
    if len(keep) != len(rows):  # blank lines are harmless
        rows = [rows[i] for i in keep]
        lines = lines[keep]
    widths = [len(row) for row in rows]
    positions = [header.index(c) for c in COLUMNS]
    if all(width > max(positions) for width in widths):
        columns = [[row[p] for row in rows] for p in positions]
    else:
        columns = [[row[p] if p < len(row) else "" for row in rows] for p in positions]
    return LongCsv(header, missing, columns, lines, widths)
