"""Export generated conversations as OIG text or chat `messages` jsonl.

Selecting and converting records is plain Python; only `run_records` touches the database (through
the run it is given). Filtering by ratings is the annotation app's (`annotation.rated_export`),
which passes its test in as `keep`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modeling.generation import to_messages, to_oig

if TYPE_CHECKING:
    from modeling.models import Conversation, GenerationRun

__all__ = [
    "FORMATS",
    "ExportCounts",
    "ExportError",
    "conversation_record",
    "export_lines",
    "run_records",
    "select_records",
]

FORMATS = ("oig", "messages")


class ExportError(ValueError):
    """A request that cannot be exported (bad threshold, no ratings to filter on)."""


@dataclass
class ExportCounts:
    """What an export read and dropped; filled in while `select_records` is consumed."""

    n_in: int = 0
    n_parse: int = 0  # dropped: parsing failed
    n_rating: int = 0  # dropped: below a rating threshold (or unrated)
    n_out: int = 0


def conversation_record(conv: Conversation) -> dict[str, Any]:
    """A Conversation row as the record dict that `generate` writes."""
    return {
        "id": conv.record_id,
        "background": conv.background,
        "question": conv.question,
        "answer": conv.answer,
        "turns": conv.turns,
        "parse_ok": conv.parse_ok,
    }


def run_records(run: GenerationRun) -> Iterator[dict[str, Any]]:
    """The run's conversations in input order, streamed from the database."""
    for conv in run.conversations.order_by("position", "sample_index").iterator(chunk_size=2000):
        yield conversation_record(conv)


def select_records(
    records: Iterable[dict[str, Any]],
    *,
    only_parse_ok: bool = True,
    keep: Callable[[dict[str, Any]], bool] | None = None,
    counts: ExportCounts | None = None,
) -> Iterator[dict[str, Any]]:
    """The records to export, lazily; `counts` (if given) is updated as they stream by.

    `keep` (if given) decides on each parsed record; what it rejects counts as below a rating.
    """
    counts = counts if counts is not None else ExportCounts()
    for record in records:
        counts.n_in += 1
        if only_parse_ok and not record.get("parse_ok"):
            counts.n_parse += 1
            continue
        if keep is not None and not keep(record):
            counts.n_rating += 1
            continue
        counts.n_out += 1
        yield record


def export_lines(records: Iterable[dict[str, Any]], fmt: str) -> Iterator[str]:
    """One jsonl line per record in FORMAT (oig: {"text"}, messages: {"messages"})."""
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r}: expected oig or messages")
    convert = to_oig if fmt == "oig" else to_messages
    for record in records:
        yield json.dumps(convert(record), ensure_ascii=False) + "\n"
