"""Long-format ratings (rater, item, target, criterion, score): loading, validation, reshaping.

A :class:`RatingsTable` keeps the ratings column-wise (integer codes + numpy arrays) so a
million ratings load and reshape in well under a second. Every validation problem names the
CSV line (or the item) it comes from.
"""

from __future__ import annotations

import csv
import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
from numpy.typing import NDArray

# The format (columns, targets, CSV reading) is shared with the annotation app's import.
from annotation.ratings_format import COLUMNS, TARGETS, read_long_csv

__all__ = [
    "COLUMNS",
    "TARGETS",
    "RatingsError",
    "RatingsTable",
    "Scale",
    "ratings_from_rows",
    "read_ratings_csv",
]

_MAX_ERRORS = 10
MAX_SCALE_POINTS = 101  # a 0-100 scale at most: bounds every array the report sizes by the scale
MAX_ABS_SCORE = 10**9  # larger "scores" are refused as not whole numbers of a rating scale


class RatingsError(ValueError):
    """Bad ratings input; ``problems`` lists every problem found (up to ten)."""

    def __init__(self, problems: Sequence[str], source: str = "ratings") -> None:
        self.problems = list(problems)
        shown = "; ".join(self.problems[:_MAX_ERRORS])
        more = len(self.problems) - _MAX_ERRORS
        extra = f" (and {more} more)" if more > 0 else ""
        super().__init__(f"{source}: {shown}{extra}")


@dataclass(frozen=True)
class Scale:
    """An integer rating scale, both ends included (parsed ones: at most MAX_SCALE_POINTS)."""

    minimum: int
    maximum: int

    def __post_init__(self) -> None:
        if self.maximum <= self.minimum:
            raise ValueError(f"scale {self.minimum}-{self.maximum}: the maximum must be larger")

    @classmethod
    def parse(cls, text: str) -> Scale:
        """Parse ``"1-5"`` (or ``"1..5"``, ``"1:5"``); negative ends like ``"-2-2"`` work too."""
        t = text.strip().replace("..", ":")
        for sep in (":", "-"):
            head, s, tail = t[1:].partition(sep)
            if s:
                try:
                    low, high = int(t[0] + head), int(tail)
                except ValueError:
                    break
                if high <= low:
                    break
                if high - low + 1 > MAX_SCALE_POINTS:
                    # The report's arrays grow with the points (squared, for agreement).
                    raise ValueError(
                        f"scale {text!r}: at most {MAX_SCALE_POINTS} points (e.g. 0-100)"
                    )
                return cls(low, high)
        raise ValueError(f"scale {text!r} is not of the form MIN-MAX, e.g. 1-5")

    @property
    def values(self) -> NDArray[np.float64]:
        return np.arange(self.minimum, self.maximum + 1, dtype=np.float64)

    def __str__(self) -> str:
        return f"{self.minimum}-{self.maximum}"


@dataclass(frozen=True, eq=False)
class RatingsTable:
    """Validated ratings, column-wise; codes index into the name tuples."""

    raters: tuple[str, ...]
    items: tuple[str, ...]
    criteria: tuple[str, ...]
    rater: NDArray[np.int64]
    item: NDArray[np.int64]
    target: NDArray[np.int64]  # 0 = question, 1 = answer
    criterion: NDArray[np.int64]
    score: NDArray[np.int64]
    scale: Scale

    def __len__(self) -> int:
        return int(self.score.size)

    def cell(self, target: str, criterion: str) -> NDArray[np.bool_]:
        """Mask of the ratings of one target and criterion."""
        return (self.target == TARGETS.index(target)) & (
            self.criterion == self.criteria.index(criterion)
        )

    def matrix(self, target: str, criterion: str) -> NDArray[np.float64]:
        """Items x raters score matrix of one cell, NaN where a rater did not rate an item."""
        mask = self.cell(target, criterion)
        m = np.full((len(self.items), len(self.raters)), np.nan)
        m[self.item[mask], self.rater[mask]] = self.score[mask]
        return m

    def item_means(self, criterion: str) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Per-item mean score of the question and of the answer for one criterion.

        Items are those rated on this criterion (validation guarantees both targets).
        """
        means = []
        for target in TARGETS:
            mask = self.cell(target, criterion)
            sums = np.bincount(self.item[mask], weights=self.score[mask], minlength=len(self.items))
            counts = np.bincount(self.item[mask], minlength=len(self.items))
            means.append((sums, counts))
        present = (means[0][1] > 0) & (means[1][1] > 0)
        idx = np.flatnonzero(present)
        q = means[0][0][idx] / means[0][1][idx]
        a = means[1][0][idx] / means[1][1][idx]
        return [self.items[i] for i in idx], q, a

    def distribution(self, target: str, criterion: str) -> NDArray[np.int64]:
        """How many ratings of this cell fall on each scale point."""
        mask = self.cell(target, criterion)
        return np.bincount(
            self.score[mask] - self.scale.minimum,
            minlength=self.scale.maximum - self.scale.minimum + 1,
        ).astype(np.int64)


def _raw_codes(column: Sequence[object]) -> tuple[list[object], NDArray[np.int64]]:
    """Codes by first appearance of each *raw* value; distinct values are cleaned later."""
    # dict.fromkeys and map run in C: several times faster than a Python loop on 1M rows.
    uniques = list(dict.fromkeys(column))
    index = {v: i for i, v in enumerate(uniques)}
    codes = np.fromiter(map(index.__getitem__, column), dtype=np.int64, count=len(column))
    return uniques, codes


def _natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort "1.10" after "1.9" and "respondent-10" after "respondent-9"."""
    parts: list[tuple[int, int | str]] = []
    num = ""
    word = ""
    for ch in text:
        if ch.isdigit():
            if word:
                parts.append((1, word))
                word = ""
            num += ch
        else:
            if num:
                parts.append((0, int(num)))
                num = ""
            word += ch
    if num:
        parts.append((0, int(num)))
    if word:
        parts.append((1, word))
    return tuple(parts)


def _parse_score(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        f = float(text)
    except ValueError:
        return None
    return int(f) if f.is_integer() else None


def _clean(value: object) -> str:
    return "" if value is None else str(value).strip()


class _Problems:
    """Problems keyed by line, so the report lists them in file order."""

    def __init__(self, lines: NDArray[np.int64]) -> None:
        self.lines = lines
        self.found: list[tuple[int, str]] = []

    def rows(self, mask: NDArray[np.bool_], message: str) -> None:
        for pos in np.flatnonzero(mask)[:_MAX_ERRORS]:
            line = int(self.lines[pos])
            self.found.append((line, f"line {line}: {message}"))

    def sorted(self) -> list[str]:
        return [m for _, m in sorted(self.found)]


def _names(
    column: Sequence[object], field: str, problems: _Problems, bad: NDArray[np.bool_]
) -> tuple[tuple[str, ...], NDArray[np.int64]]:
    """Stripped, naturally sorted names and each row's code; empty values are problems."""
    raw, codes = _raw_codes(column)
    cleaned = [_clean(v) for v in raw]
    empty = np.array([c == "" for c in cleaned], dtype=bool)
    if empty.any():
        mask = empty[codes]
        problems.rows(mask, f"empty {field}")
        bad |= mask
    names = sorted({c for c in cleaned if c}, key=_natural_key)
    position = {n: i for i, n in enumerate(names)}
    remap = np.array([position.get(c, -1) for c in cleaned], dtype=np.int64)
    return tuple(names), remap[codes] if codes.size else codes


def _table_from_columns(
    columns: Sequence[Sequence[object]],
    lines: NDArray[np.int64],
    scale: Scale | None,
    source: str,
    require_both_targets: bool,
) -> RatingsTable:
    """Validate five parallel columns; work per distinct value, so a million rows stay fast."""
    problems = _Problems(lines)
    n = len(lines)
    bad = np.zeros(n, dtype=bool)
    raters, rater_codes = _names(columns[0], "rater", problems, bad)
    items, item_codes = _names(columns[1], "item", problems, bad)
    # Targets: a handful of distinct values, checked once each.
    raw_t, t_codes = _raw_codes(columns[2])
    t_map = np.array(
        [TARGETS.index(_clean(v).lower()) if _clean(v).lower() in TARGETS else -1 for v in raw_t],
        dtype=np.int64,
    )
    target_codes = t_map[t_codes] if n else t_codes
    for code, value in enumerate(raw_t):
        if t_map[code] < 0:
            mask = (t_codes == code) & ~bad
            text = _clean(value)
            problems.rows(
                mask,
                "empty target" if not text else f"target {text!r} must be 'question' or 'answer'",
            )
            bad |= mask
    criteria, crit_codes = _names(columns[3], "criterion", problems, bad)
    raw_s, s_codes = _raw_codes(columns[4])
    parsed = [_parse_score(v) for v in raw_s]
    parsed = [None if p is not None and abs(p) > MAX_ABS_SCORE else p for p in parsed]
    s_map = np.array([-(2**62) if p is None else p for p in parsed], dtype=np.int64)
    scores = s_map[s_codes] if n else s_codes
    for code, (value, p) in enumerate(zip(raw_s, parsed, strict=True)):
        mask = (s_codes == code) & ~bad
        text = _clean(value)
        if p is None:
            problems.rows(
                mask, "empty score" if not text else f"score {text!r} is not a whole number"
            )
            bad |= mask
        elif scale is not None and not scale.minimum <= p <= scale.maximum:
            problems.rows(mask, f"score {p} is outside the scale {scale}")
            bad |= mask
    if problems.found:
        raise RatingsError(problems.sorted(), source)
    if n == 0:
        raise RatingsError(["no ratings"], source)
    if scale is None:
        lo, hi = int(scores.min()), int(scores.max())
        scale = Scale(lo, hi if hi > lo else lo + 1)
    _check_duplicates(
        raters, items, criteria, rater_codes, item_codes, target_codes, crit_codes, lines, source
    )
    if require_both_targets:
        _check_both_targets(items, criteria, item_codes, target_codes, crit_codes, source)
    return RatingsTable(
        raters=raters,
        items=items,
        criteria=criteria,
        rater=rater_codes,
        item=item_codes,
        target=target_codes,
        criterion=crit_codes,
        score=scores,
        scale=scale,
    )


def ratings_from_rows(
    rows: Iterable[Sequence[object]],
    scale: Scale | None = None,
    source: str = "ratings",
    first_line: int = 1,
    line_numbers: Sequence[int] | None = None,
    require_both_targets: bool = True,
) -> RatingsTable:
    """Validate (rater, item, target, criterion, score) rows and build a table.

    Parameters
    ----------
    rows : iterable of 5-sequences
    scale : Scale, optional
        Allowed scores; inferred from the data (min-max) when omitted.
    source : str
        Name used in error messages (file name, "study pilot").
    first_line : int
        Line number of the first row, for messages (2 for a CSV with a header).
    line_numbers : sequence of int, optional
        Explicit line number of each row (overrides ``first_line``).
    require_both_targets : bool
        Reject items rated on a criterion for only one target (a CSV meant for the paired
        comparison must pair them). Studies from the database pass False: their criteria may
        be defined for one target only, and the report then skips those comparisons.

    Raises
    ------
    RatingsError
        Naming the line or item of each problem.
    """
    data = [tuple(r) for r in rows]
    lines = (
        np.asarray(line_numbers, dtype=np.int64)
        if line_numbers is not None
        else np.arange(first_line, first_line + len(data), dtype=np.int64)
    )
    short = [i for i, r in enumerate(data) if len(r) < 5]
    if short:
        raise RatingsError(
            [f"line {lines[i]}: expected 5 fields, got {len(data[i])}" for i in short], source
        )
    columns: Sequence[Sequence[object]] = [[] for _ in range(5)]
    if data:
        columns = [list(c) for c in zip(*data, strict=False)][:5]
    return _table_from_columns(columns, lines, scale, source, require_both_targets)


def _check_duplicates(
    rater_names: tuple[str, ...],
    item_names: tuple[str, ...],
    crit_names: tuple[str, ...],
    rater: NDArray[np.int64],
    item: NDArray[np.int64],
    target: NDArray[np.int64],
    crit: NDArray[np.int64],
    lines: NDArray[np.int64],
    source: str,
) -> None:
    key = ((rater * len(item_names) + item) * 2 + target) * len(crit_names) + crit
    order = np.argsort(key, kind="stable")
    dup = np.flatnonzero(key[order][1:] == key[order][:-1])
    if dup.size == 0:
        return
    problems = []
    for k in dup[:_MAX_ERRORS]:
        first, again = int(order[k]), int(order[k + 1])
        problems.append(
            f"line {lines[again]}: duplicate rating by rater {rater_names[rater[again]]!r} of "
            f"item {item_names[item[again]]!r}, {TARGETS[target[again]]}, "
            f"{crit_names[crit[again]]!r} (first on line {lines[first]})"
        )
    problems += ["..."] * max(0, dup.size - _MAX_ERRORS)
    raise RatingsError(problems, source)


def _check_both_targets(
    item_names: tuple[str, ...],
    crit_names: tuple[str, ...],
    item: NDArray[np.int64],
    target: NDArray[np.int64],
    crit: NDArray[np.int64],
    source: str,
) -> None:
    n_items, n_crit = len(item_names), len(crit_names)
    seen = np.zeros((n_items * n_crit, 2), dtype=bool)
    seen[item * n_crit + crit, target] = True
    used = seen.any(axis=1)
    bad = np.flatnonzero(used & ~seen.all(axis=1))
    if bad.size == 0:
        return
    problems = []
    for cell in bad[:_MAX_ERRORS]:
        i, c = divmod(int(cell), n_crit)
        has, missing = ("question", "answer") if seen[cell, 0] else ("answer", "question")
        problems.append(
            f"item {item_names[i]!r} has {has} ratings but no {missing} ratings for "
            f"criterion {crit_names[c]!r}"
        )
    problems += ["..."] * max(0, bad.size - _MAX_ERRORS)
    raise RatingsError(problems, source)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: building a million row lists otherwise triggers it again and again
    (it halves the parsing time), and rows hold no reference cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_ratings_csv(
    source: str | Path | TextIO, scale: Scale | None = None, name: str | None = None
) -> RatingsTable:
    """Read a long-format CSV with a header ``rater,item,target,criterion,score``.

    Column order does not matter, extra columns are ignored, a UTF-8 BOM is accepted.

    Parameters
    ----------
    source : path or text stream
    scale : Scale, optional
    name : str, optional
        Name for error messages; defaults to the file name.
    """
    if isinstance(source, str | Path):
        path = Path(source)
        label = name or str(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise RatingsError(["file not found"], label) from None
        except IsADirectoryError:
            raise RatingsError(["is a directory, not a file"], label) from None
        except UnicodeDecodeError as exc:
            raise RatingsError([f"not UTF-8 text ({exc.reason})"], label) from None
        except OSError as exc:
            raise RatingsError([f"cannot read the file ({exc.strerror})"], label) from None
    else:
        label = name or str(getattr(source, "name", None) or "ratings")
        text = source.read()
    with _gc_paused():
        return _parse_csv_text(text, scale, label)


def _parse_csv_text(text: str, scale: Scale | None, label: str) -> RatingsTable:
    try:
        read = read_long_csv(text)
    except csv.Error as exc:
        raise RatingsError([f"line {getattr(exc, 'line', 1)}: {exc}"], label) from None
    if read is None:
        raise RatingsError(["empty file"], label)
    if read.missing:
        found = ", ".join(read.header) or "none"
        raise RatingsError(
            [f"line 1: missing column(s) {', '.join(read.missing)}; found {found}"], label
        )
    short = read.short_rows()
    if short:
        raise RatingsError(
            [
                f"line {read.lines[i]}: expected {len(read.header)} fields, got {read.widths[i]}"
                for i in short[: _MAX_ERRORS * 5]
            ],
            label,
        )
    table = _table_from_columns(read.columns, read.lines, scale, label, require_both_targets=True)
    points = table.scale.maximum - table.scale.minimum + 1
    if points > MAX_SCALE_POINTS:  # an uploaded file's scores set the scale: bound it too
        raise RatingsError(
            [f"the scores run from {table.scale}: at most {MAX_SCALE_POINTS} points of a scale"],
            label,
        )
    return table
