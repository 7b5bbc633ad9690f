"""Export generated conversations as OIG text or chat `messages` jsonl, optionally rating-filtered.

Shared by `manage.py export_dataset` and the download on the generation run page. Selecting and
converting records is plain Python; only `run_records` and `rating_means` touch the database
(imported lazily, so the module loads without Django).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modeling.generation import to_messages, to_oig

if TYPE_CHECKING:
    from modeling.models import Conversation, GenerationRun

__all__ = [
    "FORMATS",
    "TARGETS",
    "ExportCounts",
    "ExportError",
    "conversation_record",
    "export_lines",
    "means_by_record",
    "parse_min_ratings",
    "passes",
    "rating_means",
    "run_records",
    "select_records",
]

FORMATS = ("oig", "messages")
# Whose ratings count for a threshold; "both" needs the question and the answer to pass.
TARGETS: dict[str, tuple[str, ...]] = {
    "question": ("question",),
    "answer": ("answer",),
    "both": ("question", "answer"),
}


class ExportError(ValueError):
    """A request that cannot be exported (bad threshold, no ratings to filter on)."""


@dataclass
class ExportCounts:
    """What an export read and dropped; filled in while `select_records` is consumed."""

    n_in: int = 0
    n_parse: int = 0  # dropped: parsing failed
    n_rating: int = 0  # dropped: below a rating threshold (or unrated)
    n_out: int = 0


def parse_min_ratings(values: Sequence[str]) -> dict[str, float]:
    """`correctness=2.5` -> {"correctness": 2.5}; ExportError naming anything else."""
    out: dict[str, float] = {}
    for raw in values:
        name, sep, value = raw.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ExportError(f"{raw!r}: expected CRITERION=NUMBER") from None
    return out


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


def rating_means(
    record_ids: Iterable[str] | None, run: GenerationRun | None, criteria: Iterable[str]
) -> dict[tuple[str, str, str], float]:
    """{(record_id, target, criterion): mean score} over completed, non-attention-check items.

    `record_ids=None` means every conversation of `run`.
    """
    try:
        from annotation.models import Rating
    except ImportError as exc:  # the annotation app is optional for generation-only installs
        raise ExportError("rating filters need the annotation app") from exc
    from django.db.models import Avg

    from modeling.models import Conversation

    convs = Conversation.objects.all()
    if record_ids is not None:
        convs = convs.filter(record_id__in=list(record_ids))
    if run is not None:
        convs = convs.filter(run=run)
    rows = (
        Rating.objects.filter(
            assignment__item__conversation__in=convs,
            assignment__item__is_attention_check=False,
            criterion__in=list(criteria),
        )
        .values("assignment__item__conversation__record_id", "target", "criterion")
        .annotate(mean=Avg("score"))
    )
    return {
        (r["assignment__item__conversation__record_id"], r["target"], r["criterion"]): float(
            r["mean"]
        )
        for r in rows
    }


def means_by_record(
    means: Mapping[tuple[str, str, str], float],
) -> dict[str, dict[tuple[str, str], float]]:
    """{record_id: {(target, criterion): mean}}."""
    out: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    for (rid, target, criterion), mean in means.items():
        out[rid][(target, criterion)] = mean
    return dict(out)


def passes(
    got: Mapping[tuple[str, str], float], thresholds: Mapping[str, float], target: str
) -> bool:
    """Every threshold is met for every target; an unrated pair cannot show that it passes."""
    return all(
        got.get((t, c), float("-inf")) >= v for c, v in thresholds.items() for t in TARGETS[target]
    )


def select_records(
    records: Iterable[dict[str, Any]],
    *,
    only_parse_ok: bool = True,
    thresholds: Mapping[str, float] | None = None,
    target: str = "answer",
    means: Mapping[tuple[str, str, str], float] | None = None,
    counts: ExportCounts | None = None,
) -> Iterator[dict[str, Any]]:
    """The records to export, lazily; `counts` (if given) is updated as they stream by."""
    if target not in TARGETS:
        raise ExportError(f"target {target!r}: expected one of {', '.join(TARGETS)}")
    counts = counts if counts is not None else ExportCounts()
    by_record = means_by_record(means or {}) if thresholds else {}
    for record in records:
        counts.n_in += 1
        if only_parse_ok and not record.get("parse_ok"):
            counts.n_parse += 1
            continue
        if thresholds and not passes(by_record.get(record["id"], {}), thresholds, target):
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
