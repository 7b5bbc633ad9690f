"""Ratings in and out of a study as files: long-format csv import, csv/jsonl export."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, Q

from annotation.allocation import rater_position
from annotation.items import InputError
from annotation.models import Assignment, AssignmentStatus, Item, Rating, Study
from annotation.ratings_format import COLUMNS, TARGETS, read_long_csv, spreadsheet_safe
from convgen_site.roles import RATER, add_role

__all__ = [
    "EXPORT_COLUMNS",
    "ImportSummary",
    "export_ratings",
    "export_to_string",
    "import_ratings",
    "iter_export_lines",
    "iter_export_rows",
    "recount_items",
]


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote."""

    rows: int
    ratings: int
    assignments: int
    raters_created: int
    items_created: int
    items_over_k: int


@dataclass
class _ParsedRating:
    line: int
    rater: str
    item: str
    target: str
    criterion: str
    score: int


def _parse_rating_rows(
    study: Study, stream: IO[str], name: str
) -> tuple[list[_ParsedRating], list[str]]:
    read = read_long_csv(stream.read())
    missing = list(COLUMNS) if read is None else read.missing
    if read is None or missing:
        raise InputError(name, [f"line 1: header: missing column(s) {', '.join(missing)}"])
    criteria = set(study.criteria_keys)
    problems: list[str] = []
    parsed: list[_ParsedRating] = []
    first_line: dict[tuple[str, str, str, str], int] = {}
    for line, *fields in zip(read.lines.tolist(), *read.columns, strict=True):
        values = {c: v.strip() for c, v in zip(COLUMNS, fields, strict=True)}
        empty = [c for c in COLUMNS if not values[c]]
        if empty:
            problems.append(f"line {line}: {empty[0]}: empty")
            continue
        if values["target"] not in TARGETS:
            problems.append(f"line {line}: target: {values['target']!r} is not question or answer")
            continue
        if (values["target"], values["criterion"]) not in criteria:
            problems.append(
                f"line {line}: criterion: {values['target']}/{values['criterion']} "
                f"is not a criterion of study {study.slug}"
            )
            continue
        try:
            score = int(values["score"])
        except ValueError:
            problems.append(f"line {line}: score: {values['score']!r} is not a whole number")
            continue
        if not study.scale_min <= score <= study.scale_max:
            problems.append(
                f"line {line}: score: {score} is off the scale {study.scale_min}..{study.scale_max}"
            )
            continue
        key = (values["rater"], values["item"], values["target"], values["criterion"])
        if key in first_line:
            problems.append(f"line {line}: duplicate of line {first_line[key]}")
            continue
        first_line[key] = line
        parsed.append(_ParsedRating(line, *key, score=score))
    return parsed, problems


def import_ratings(
    study: Study,
    stream: IO[str],
    name: str,
    *,
    create_raters: bool = False,
    create_items: bool = False,
) -> ImportSummary:
    """Import long-format ratings (rater,item,target,criterion,score): all rows or none.

    Unknown raters/items are created with the flags, else reported with their line numbers.
    Importing the same file again changes nothing (ratings are keyed by rater, item, criterion).
    """
    parsed, problems = _parse_rating_rows(study, stream, name)
    user_model = get_user_model()
    username_field = user_model.USERNAME_FIELD
    rater_names = {p.rater for p in parsed}
    item_ids = {p.item for p in parsed}
    users = {
        getattr(u, username_field): u
        for u in user_model.objects.filter(**{f"{username_field}__in": rater_names})
    }
    items = {i.external_id: i for i in study.items.filter(external_id__in=item_ids)}
    refused: set[str] = set()
    for p in parsed:
        if p.rater not in users and not create_raters:
            problems.append(f"line {p.line}: rater: unknown rater {p.rater!r} (--create-raters)")
        elif p.rater not in users and p.rater not in refused:
            why = _username_problem(user_model, p.rater)
            if why:
                refused.add(p.rater)  # named once, on its first line
                problems.append(f"line {p.line}: rater: {p.rater!r} cannot be a username: {why}")
        if p.item not in items and not create_items:
            problems.append(f"line {p.line}: item: unknown item {p.item!r} (--create-items)")
    if problems:
        problems.sort(key=lambda text: int(text.split(":")[0].removeprefix("line ") or 0))
        raise InputError(name, problems)
    if not parsed:
        raise InputError(name, ["no ratings in the file"])

    with transaction.atomic():
        raters_created = 0
        for rater_name in sorted(rater_names - set(users)):
            user = user_model(**{username_field: rater_name})
            user.set_unusable_password()
            user.save()
            add_role(user, RATER)
            users[rater_name] = user
            raters_created += 1
        missing_items = sorted(item_ids - set(items))
        next_rank = (study.items.aggregate(top=Max("rank"))["top"] or -1) + 1
        for offset, external_id in enumerate(missing_items):
            items[external_id] = Item.objects.create(
                study=study, external_id=external_id, source="imported", rank=next_rank + offset
            )
        # Lock the touched items (in id order, so two imports cannot deadlock) so that live
        # raters cannot move their counters mid-import.
        list(
            Item.objects.select_for_update()
            .filter(pk__in=[i.pk for i in items.values()])
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        grouped: dict[tuple[str, str], list[_ParsedRating]] = defaultdict(list)
        for p in parsed:
            grouped[(p.rater, p.item)].append(p)
        for (rater_name, external_id), entries in grouped.items():
            user, item = users[rater_name], items[external_id]
            assignment, _ = Assignment.objects.get_or_create(
                item=item,
                rater=user,
                defaults={"position": rater_position(study, int(user.pk), item.rank)},
            )
            assignment.status = AssignmentStatus.COMPLETED
            assignment.leased_until = None
            assignment.completed_at = assignment.completed_at or study.created_at
            assignment.save()
            for p in entries:
                Rating.objects.update_or_create(
                    assignment=assignment,
                    target=p.target,
                    criterion=p.criterion,
                    defaults={"score": p.score},
                )
        over_k = recount_items(study, [int(i.pk) for i in items.values()])
    return ImportSummary(
        rows=len(parsed),
        ratings=len(parsed),
        assignments=len(grouped),
        raters_created=raters_created,
        items_created=len(missing_items),
        items_over_k=over_k,
    )


def _username_problem(user_model: Any, name: str) -> str | None:
    """Why Django would refuse `name` as a new username (its own validators); None if fine."""
    field = user_model._meta.get_field(user_model.USERNAME_FIELD)
    try:
        field.run_validators(name)
    except ValidationError as exc:
        return " ".join(str(m) for m in exc.messages)
    return None


def recount_items(study: Study, item_ids: list[int]) -> int:
    """Set completed/leased counters from the assignments; returns how many items exceed k."""
    counts = (
        Assignment.objects.filter(item_id__in=item_ids)
        .values("item_id")
        .annotate(
            done=Count("pk", filter=Q(status=AssignmentStatus.COMPLETED)),
            leased=Count("pk", filter=Q(status=AssignmentStatus.LEASED)),
        )
    )
    over = 0
    for row in counts:
        Item.objects.filter(pk=row["item_id"]).update(
            completed_count=row["done"], leased_count=row["leased"]
        )
        if row["done"] > study.raters_per_item:
            over += 1
    return over


# ---------------------------------------------------------------- exporting ratings

EXPORT_COLUMNS = (
    "rater",
    "item",
    "target",
    "criterion",
    "score",
    "source",
    "attention_check",
    "time_spent_ms",
    "completed_at",
)


def iter_export_rows(study: Study, include_attention_checks: bool = False) -> Iterator[dict]:
    """One dict per rating of a completed assignment, in a stable order."""
    ratings = Rating.objects.filter(
        assignment__item__study=study, assignment__status=AssignmentStatus.COMPLETED
    )
    if not include_attention_checks:
        ratings = ratings.filter(assignment__item__is_attention_check=False)
    username_field = get_user_model().USERNAME_FIELD
    values = ratings.order_by(
        "assignment__item__rank", "assignment__item_id", "assignment_id", "target", "criterion"
    ).values_list(
        f"assignment__rater__{username_field}",
        "assignment__item__external_id",
        "target",
        "criterion",
        "score",
        "assignment__item__source",
        "assignment__item__is_attention_check",
        "assignment__time_spent_ms",
        "assignment__completed_at",
    )
    for row in values.iterator(chunk_size=2000):
        record = dict(zip(EXPORT_COLUMNS, row, strict=True))
        completed_at = record["completed_at"]
        record["completed_at"] = completed_at.isoformat() if completed_at else ""
        yield record


def export_ratings(
    study: Study, fmt: str, out: IO[str], include_attention_checks: bool = False
) -> int:
    """Write the study's ratings as csv (long format, import-compatible) or jsonl; returns rows."""
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown format {fmt!r}; use csv or jsonl")
    count = 0
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    for record in iter_export_rows(study, include_attention_checks):
        if writer:
            writer.writerow(_csv_record(record))
        else:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def _csv_record(record: dict) -> dict:
    """A row for the CSV: no None, and no cell a spreadsheet would run as a formula.

    The CSV reader (`ratings_format.read_long_csv`) undoes the protection, so an exported CSV
    imports back exactly; the jsonl export is exact as it is.
    """
    return {k: "" if v is None else spreadsheet_safe(v) for k, v in record.items()}


def export_to_string(study: Study, fmt: str, include_attention_checks: bool = False) -> str:
    buffer = io.StringIO()
    export_ratings(study, fmt, buffer, include_attention_checks)
    return buffer.getvalue()


class _LineBuffer:
    """A write() target that hands back what was written (for streaming csv rows)."""

    def write(self, text: str) -> str:
        return text


def iter_export_lines(
    study: Study, fmt: str, include_attention_checks: bool = False
) -> Iterator[str]:
    """The export as lines, for a streaming HTTP response."""
    if fmt == "csv":
        writer = csv.DictWriter(_LineBuffer(), fieldnames=EXPORT_COLUMNS)
        yield writer.writeheader()
        for record in iter_export_rows(study, include_attention_checks):
            yield writer.writerow(_csv_record(record))
    elif fmt == "jsonl":
        for record in iter_export_rows(study, include_attention_checks):
            yield json.dumps(record, ensure_ascii=False) + "\n"
    else:
        raise ValueError(f"unknown format {fmt!r}; use csv or jsonl")
