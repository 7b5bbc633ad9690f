"""Items to rate, before they are in the database: read from jsonl/csv files or a generation run."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from annotation.models import expected_key
from modeling.oig.clean import clean_text

__all__ = [
    "ID_COLUMNS",
    "REFERENCE_SOURCE",
    "REFERENCE_SPLITS",
    "InputError",
    "ItemRow",
    "block_key",
    "read_item_file",
    "read_item_rows",
    "reference_file_rows",
    "rows_from_dataset",
    "rows_from_generation_run",
    "rows_from_reference_records",
]

REFERENCE_SOURCE = "reference"
REFERENCE_SPLITS = ("val", "train")

ID_COLUMNS = ("external_id", "item", "id", "record_id")
MAX_REPORTED_ERRORS = 20


class InputError(Exception):
    """Bad input file; `problems` are 'line N: field: message' strings, first ones first."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        shown = problems[:MAX_REPORTED_ERRORS]
        more = len(problems) - len(shown)
        text = "; ".join(shown) + (f"; ... and {more} more" if more > 0 else "")
        super().__init__(f"{path}: {text}")


def block_key(background: str) -> str:
    """The block of a Background: a hash of its text cleaned as training data is.

    Generation cleans Backgrounds the way `prepare_data` does, so a generated conversation, the
    prepared dataset's reference conversation and an item file's row of the same Background
    share this key whatever markup or spacing the original had.
    """
    text = " ".join(clean_text(background).split()).casefold()
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class ItemRow:
    """One item to create, before it is in the database."""

    external_id: str
    background: str
    question: str = ""
    answer: str = ""
    source: str = ""
    is_attention_check: bool = False
    expected_scores: dict[str, int] = field(default_factory=dict)
    conversation_id: int | None = None
    block: str = ""  # empty: block_key(background) when the study is created


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "y", "x"}


def _expected_from(record: dict[str, Any], line: int, problems: list[str]) -> dict[str, int]:
    """Expected scores: `expected_scores` (object or JSON) or `expected_<target>_<criterion>`."""
    expected: dict[str, int] = {}
    raw = record.get("expected_scores")
    if isinstance(raw, str) and raw.strip():
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):  # also a 5,000-digit number, deep nesting
            problems.append(f"line {line}: expected_scores: not valid JSON")
            raw = None
    if isinstance(raw, dict):
        for key, value in raw.items():
            expected[str(key)] = value
    for column, value in record.items():
        if column.startswith("expected_") and column != "expected_scores" and str(value).strip():
            target, _, criterion = column.removeprefix("expected_").partition("_")
            expected[expected_key(target, criterion)] = value
    clean: dict[str, int] = {}
    for key, value in expected.items():
        try:
            clean[key] = int(value)
        except (TypeError, ValueError):
            problems.append(f"line {line}: expected score {key}: {value!r} is not a whole number")
    return clean


def _row_from_record(
    record: dict[str, Any], line: int, default_source: str, problems: list[str]
) -> ItemRow | None:
    external_id = next(
        (str(record[c]).strip() for c in ID_COLUMNS if str(record.get(c) or "").strip()), ""
    )
    if not external_id:
        problems.append(f"line {line}: item: missing an id (one of {', '.join(ID_COLUMNS)})")
        return None
    background = str(record.get("background") or "")
    if not background.strip():
        problems.append(f"line {line}: background: empty")
        return None
    attention = _truthy(record.get("attention_check") or record.get("is_attention_check") or "")
    expected = _expected_from(record, line, problems)
    if attention and not expected:
        problems.append(f"line {line}: expected_scores: an attention check needs expected scores")
    question, answer = str(record.get("question") or ""), str(record.get("answer") or "")
    if not (question or answer) and isinstance(record.get("turns"), list):
        question, answer = _first_exchange(record["turns"])
    return ItemRow(
        external_id=external_id,
        background=background,
        question=question,
        answer=answer,
        source=str(record.get("source") or default_source),
        is_attention_check=attention,
        expected_scores=expected,
    )


def read_item_rows(
    stream: IO[str], name: str, default_source: str = "", fmt: str | None = None
) -> list[ItemRow]:
    """Items from a jsonl or csv stream (background, question, answer, optional source and id)."""
    fmt = fmt or ("csv" if name.lower().endswith(".csv") else "jsonl")
    problems: list[str] = []
    rows: list[ItemRow] = []
    if fmt == "csv":
        reader = csv.DictReader(stream)
        if not reader.fieldnames or "background" not in reader.fieldnames:
            raise InputError(name, ["line 1: header: needs a 'background' column"])
        for record in reader:
            row = _row_from_record(record, reader.line_num, default_source, problems)
            if row:
                rows.append(row)
    else:
        for line_no, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(f"line {line_no}: not valid JSON ({exc.msg})")
                continue
            except (ValueError, RecursionError):  # a 5,000-digit number, very deep nesting
                problems.append(f"line {line_no}: not valid JSON (a number or nesting too large)")
                continue
            if not isinstance(record, dict):
                problems.append(f"line {line_no}: expected a JSON object")
                continue
            row = _row_from_record(record, line_no, default_source, problems)
            if row:
                rows.append(row)
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        if row.external_id in seen:
            problems.append(f"item {row.external_id!r}: appears twice")
        seen[row.external_id] = index
    if problems:
        raise InputError(name, problems)
    if not rows:
        raise InputError(name, ["no items in the file"])
    return rows


def read_item_file(path: Path, default_source: str | None = None) -> list[ItemRow]:
    """Items from a jsonl/csv file; the source defaults to the file's stem."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            return read_item_rows(stream, str(path), default_source or path.stem)
    except OSError as exc:
        raise InputError(str(path), [f"cannot be read: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        raise InputError(str(path), ["is not UTF-8 text"]) from exc


def rows_from_generation_run(run: Any) -> list[ItemRow]:
    """One item per parsed conversation of a modeling.GenerationRun; the run names the source."""
    source = run.name or f"generation-run-{run.pk}"
    return [
        ItemRow(
            external_id=f"run{run.pk}:{conv.record_id}",
            background=conv.background,
            question=conv.question,
            answer=conv.answer,
            source=source,
            conversation_id=conv.pk,
        )
        for conv in run.conversations.filter(parse_ok=True).order_by("position", "sample_index")
    ]


def _first_exchange(turns: Any) -> tuple[str, str]:
    """The first human turn and the bot turn after it, from [{"role", "text"}, ...]."""
    question = answer = ""
    for turn in turns if isinstance(turns, list) else []:
        if not isinstance(turn, dict):
            continue
        role, text = turn.get("role"), str(turn.get("text") or "")
        if role == "human" and not question:
            question = text
        elif role == "bot" and question:
            answer = text
            break
    return question, answer


def rows_from_reference_records(
    records: Iterable[dict[str, Any]], prefix: str, blocks: Collection[str] | None = None
) -> list[ItemRow]:
    """Human-written reference items (source ``reference``) from records with `background` and
    `turns` (a prepared dataset's train/val jsonl) or `question`/`answer`.

    With `blocks`, only the Backgrounds in it are kept (the Backgrounds the study's generation
    runs wrote about), one item per Background.
    """
    rows: list[ItemRow] = []
    seen: set[str] = set()
    for index, record in enumerate(records):
        background = str(record.get("background") or "")
        if not background.strip():
            continue
        question = str(record.get("question") or "")
        answer = str(record.get("answer") or "")
        if not (question or answer):
            question, answer = _first_exchange(record.get("turns"))
        if not (question and answer):
            continue
        block = block_key(background)
        if block in seen or (blocks is not None and block not in blocks):
            continue
        seen.add(block)
        record_id = str(record.get("id") or record.get("item") or index)
        rows.append(
            ItemRow(
                external_id=f"{prefix}:{record_id}",
                background=background,
                question=question,
                answer=answer,
                source=REFERENCE_SOURCE,
                block=block,
            )
        )
    return rows


def _jsonl_records(path: Path) -> Iterable[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8-sig") as stream:
            for line_no, text in enumerate(stream, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InputError(str(path), [f"line {line_no}: not valid JSON"]) from exc
                if isinstance(record, dict):
                    yield record
    except OSError as exc:
        raise InputError(str(path), [f"cannot be read: {exc.strerror}"]) from exc


def reference_file_rows(path: Path, blocks: Collection[str] | None = None) -> list[ItemRow]:
    """Reference items from a jsonl file of records with `background` and `turns` or
    `question`/`answer` (for example the demo's Backgrounds)."""
    rows = rows_from_reference_records(_jsonl_records(path), f"ref:{path.stem}", blocks)
    if not rows:
        raise InputError(str(path), ["no record with a Background and a question and answer"])
    return rows


def rows_from_dataset(
    dataset: Any, splits: Iterable[str] = REFERENCE_SPLITS, blocks: Collection[str] | None = None
) -> list[ItemRow]:
    """The reference conversations of a prepared `modeling.Dataset` (its train/val jsonl): the
    human-written OIG question and answer of each Background, source ``reference``.

    With `blocks`, only Backgrounds that other items of the study have (see
    :func:`rows_from_reference_records`).
    """
    rows: list[ItemRow] = []
    found: set[str] = set()
    for split in splits:
        if split not in REFERENCE_SPLITS:
            raise InputError(str(dataset), [f"unknown split {split!r}; use val or train"])
        path = Path(dataset.output_dir) / f"{split}.jsonl"
        if not path.is_file():
            continue
        for row in rows_from_reference_records(
            _jsonl_records(path), f"ref{dataset.pk}-{split}", blocks
        ):
            if row.block not in found:
                found.add(row.block)
                rows.append(row)
    return rows
