"""Study creation, rating import/export and researcher reports (for commands, views, API)."""

from __future__ import annotations

import csv
import io
import json
import random
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, Q

from annotation.allocation import rater_position
from annotation.models import (
    SCALE_PRESETS,
    TARGETS,
    Assignment,
    AssignmentStatus,
    Item,
    Rating,
    Study,
    default_criteria,
    expected_key,
    random_seed,
)
from convgen_site.roles import RATER, add_role

ID_COLUMNS = ("external_id", "item", "id", "record_id")
RATING_COLUMNS = ("rater", "item", "target", "criterion", "score")
MAX_REPORTED_ERRORS = 20
SPEEDER_MIN_MS = 3000
SPEEDER_FRACTION_OF_MEDIAN = 0.2


class InputError(Exception):
    """Bad input file; `problems` are 'line N: field: message' strings, first ones first."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        shown = problems[:MAX_REPORTED_ERRORS]
        more = len(problems) - len(shown)
        text = "; ".join(shown) + (f"; ... and {more} more" if more > 0 else "")
        super().__init__(f"{path}: {text}")


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


@dataclass(frozen=True)
class StudySpec:
    """Everything a study needs besides its items; defaults are the pilot study's."""

    title: str
    slug: str
    instructions: str = ""
    scale: str = "1-3"
    scale_labels: dict[str, str] | None = None
    criteria: list[dict[str, str]] | None = None
    raters_per_item: int = 3
    items_per_rater: int = 0
    lease_seconds: int = 1800
    seed: int | None = None


# ---------------------------------------------------------------- reading item files


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "y", "x"}


def _expected_from(record: dict[str, Any], line: int, problems: list[str]) -> dict[str, int]:
    """Expected scores: `expected_scores` (object or JSON) or `expected_<target>_<criterion>`."""
    expected: dict[str, int] = {}
    raw = record.get("expected_scores")
    if isinstance(raw, str) and raw.strip():
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
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
    return ItemRow(
        external_id=external_id,
        background=background,
        question=str(record.get("question") or ""),
        answer=str(record.get("answer") or ""),
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


# ---------------------------------------------------------------- creating studies


def create_study(spec: StudySpec, rows: Iterable[ItemRow], created_by: User | None = None) -> Study:
    """Create the study and its items (shuffled once with the study's seed) in one transaction."""
    rows = list(rows)
    if not rows:
        raise ValidationError({"items": "a study needs at least one item"})
    ids = [row.external_id for row in rows]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValidationError({"items": f"item ids repeat across sources: {', '.join(dupes)}"})
    if spec.scale_labels is not None:
        labels = dict(spec.scale_labels)
    elif spec.scale in SCALE_PRESETS:
        labels = dict(SCALE_PRESETS[spec.scale])
    else:
        raise ValidationError({"scale": f"unknown scale {spec.scale!r}; use 1-3 or 1-5"})
    points = sorted(int(p) for p in labels)
    study = Study(
        slug=spec.slug,
        title=spec.title,
        instructions=spec.instructions,
        scale_min=points[0],
        scale_max=points[-1],
        scale_labels=labels,
        criteria=spec.criteria or default_criteria(),
        raters_per_item=spec.raters_per_item,
        items_per_rater=spec.items_per_rater,
        lease_seconds=spec.lease_seconds,
        seed=spec.seed if spec.seed is not None else random_seed(),
        created_by=created_by if created_by is not None and created_by.pk else None,
    )
    study.full_clean()
    ranks = list(range(len(rows)))
    random.Random(study.seed).shuffle(ranks)
    with transaction.atomic():
        study.save()
        Item.objects.bulk_create(
            [
                Item(
                    study=study,
                    external_id=row.external_id,
                    background=row.background,
                    question=row.question,
                    answer=row.answer,
                    source=row.source,
                    conversation_id=row.conversation_id,
                    rank=rank,
                    is_attention_check=row.is_attention_check,
                    expected_scores=row.expected_scores,
                )
                for row, rank in zip(rows, ranks, strict=True)
            ],
            batch_size=1000,
        )
    return study


# ---------------------------------------------------------------- importing ratings


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
    reader = csv.DictReader(stream)
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in RATING_COLUMNS if c not in header]
    if missing:
        raise InputError(name, [f"line 1: header: missing column(s) {', '.join(missing)}"])
    reader.fieldnames = header
    criteria = set(study.criteria_keys)
    problems: list[str] = []
    parsed: list[_ParsedRating] = []
    first_line: dict[tuple[str, str, str, str], int] = {}
    for record in reader:
        line = reader.line_num
        values = {c: str(record.get(c) or "").strip() for c in RATING_COLUMNS}
        empty = [c for c in RATING_COLUMNS if not values[c]]
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
    for p in parsed:
        if p.rater not in users and not create_raters:
            problems.append(f"line {p.line}: rater: unknown rater {p.rater!r} (--create-raters)")
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
            writer.writerow({k: "" if v is None else v for k, v in record.items()})
        else:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


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
            yield writer.writerow({k: "" if v is None else v for k, v in record.items()})
    elif fmt == "jsonl":
        for record in iter_export_rows(study, include_attention_checks):
            yield json.dumps(record, ensure_ascii=False) + "\n"
    else:
        raise ValueError(f"unknown format {fmt!r}; use csv or jsonl")


# ---------------------------------------------------------------- researcher reports


@dataclass(frozen=True)
class RaterProgress:
    """One rater's state in one study."""

    rater: str
    completed: int
    in_progress: int
    skipped: int
    flagged: int
    expired: int
    median_seconds: float | None
    attention_failures: int
    speedy: int


@dataclass(frozen=True)
class AttentionFailure:
    rater: str
    item: str
    target: str
    criterion: str
    expected: int
    given: int


@dataclass(frozen=True)
class Speeder:
    rater: str
    item: str
    seconds: float


@dataclass(frozen=True)
class StudyOverview:
    """Study-wide counts for the researcher's page."""

    items: int
    attention_checks: int
    items_complete: int
    ratings_completed: int
    in_progress: int
    skipped: int
    flagged: int
    median_seconds: float | None
    speeder_threshold_seconds: float


def _completed_times(study: Study) -> list[int]:
    times = Assignment.objects.filter(
        item__study=study, status=AssignmentStatus.COMPLETED, time_spent_ms__isnull=False
    ).values_list("time_spent_ms", flat=True)
    return [int(ms) for ms in times if ms is not None]


def speeder_threshold_ms(study: Study) -> float:
    """Faster than this is suspicious: under 3 s, or under 20% of the study's median time."""
    times = _completed_times(study)
    median = statistics.median(times) if times else 0
    return max(SPEEDER_MIN_MS, SPEEDER_FRACTION_OF_MEDIAN * median)


def speeders(study: Study) -> list[Speeder]:
    threshold = speeder_threshold_ms(study)
    username_field = get_user_model().USERNAME_FIELD
    rows = (
        Assignment.objects.filter(
            item__study=study, status=AssignmentStatus.COMPLETED, time_spent_ms__lt=threshold
        )
        .order_by("time_spent_ms")
        .values_list(f"rater__{username_field}", "item__external_id", "time_spent_ms")
    )
    return [Speeder(r, i, ms / 1000) for r, i, ms in rows]


def attention_check_failures(study: Study) -> list[AttentionFailure]:
    username_field = get_user_model().USERNAME_FIELD
    failures = []
    ratings = (
        Rating.objects.filter(
            assignment__item__study=study,
            assignment__item__is_attention_check=True,
            assignment__status=AssignmentStatus.COMPLETED,
        )
        .select_related("assignment__item", "assignment__rater")
        .order_by("assignment_id", "target", "criterion")
    )
    for rating in ratings:
        item = rating.assignment.item
        want = (item.expected_scores or {}).get(expected_key(rating.target, rating.criterion))
        if want is not None and int(want) != rating.score:
            failures.append(
                AttentionFailure(
                    rater=getattr(rating.assignment.rater, username_field),
                    item=item.external_id,
                    target=rating.target,
                    criterion=rating.criterion,
                    expected=int(want),
                    given=rating.score,
                )
            )
    return failures


def rater_progress(study: Study) -> list[RaterProgress]:
    username_field = get_user_model().USERNAME_FIELD
    rows = (
        Assignment.objects.filter(item__study=study)
        .values(f"rater__{username_field}")
        .annotate(
            completed=Count("pk", filter=Q(status=AssignmentStatus.COMPLETED)),
            in_progress=Count("pk", filter=Q(status=AssignmentStatus.LEASED)),
            skipped=Count("pk", filter=Q(status=AssignmentStatus.SKIPPED)),
            flagged=Count("pk", filter=Q(status=AssignmentStatus.FLAGGED)),
            expired=Count("pk", filter=Q(status=AssignmentStatus.EXPIRED)),
        )
        .order_by(f"rater__{username_field}")
    )
    times: dict[str, list[int]] = defaultdict(list)
    for name, ms in Assignment.objects.filter(
        item__study=study, status=AssignmentStatus.COMPLETED, time_spent_ms__isnull=False
    ).values_list(f"rater__{username_field}", "time_spent_ms"):
        times[name].append(ms)
    failures: dict[str, set[str]] = defaultdict(set)
    for failure in attention_check_failures(study):
        failures[failure.rater].add(failure.item)
    speedy: dict[str, int] = defaultdict(int)
    for speeder in speeders(study):
        speedy[speeder.rater] += 1
    result = []
    for row in rows:
        name = row[f"rater__{username_field}"]
        result.append(
            RaterProgress(
                rater=name,
                completed=row["completed"],
                in_progress=row["in_progress"],
                skipped=row["skipped"],
                flagged=row["flagged"],
                expired=row["expired"],
                median_seconds=statistics.median(times[name]) / 1000 if times[name] else None,
                attention_failures=len(failures[name]),
                speedy=speedy[name],
            )
        )
    return result


def item_progress(study: Study) -> Any:
    """Items with their counters and skip/flag counts, least covered first (a queryset)."""
    return (
        study.items.annotate(
            skipped=Count("assignments", filter=Q(assignments__status=AssignmentStatus.SKIPPED)),
            flagged=Count("assignments", filter=Q(assignments__status=AssignmentStatus.FLAGGED)),
        )
        .order_by("completed_count", "rank")
        .only("external_id", "source", "completed_count", "leased_count", "is_attention_check")
    )


def flagged_assignments(study: Study) -> Any:
    return (
        Assignment.objects.filter(
            item__study=study, status__in=[AssignmentStatus.FLAGGED, AssignmentStatus.SKIPPED]
        )
        .select_related("item", "rater")
        .order_by("-id")
    )


def overview(study: Study) -> StudyOverview:
    items = study.items.aggregate(
        total=Count("pk"),
        checks=Count("pk", filter=Q(is_attention_check=True)),
        complete=Count(
            "pk",
            filter=Q(is_attention_check=False, completed_count__gte=study.raters_per_item),
        ),
    )
    statuses = dict(
        Assignment.objects.filter(item__study=study)
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    times = _completed_times(study)
    return StudyOverview(
        items=items["total"],
        attention_checks=items["checks"],
        items_complete=items["complete"],
        ratings_completed=statuses.get(AssignmentStatus.COMPLETED, 0),
        in_progress=statuses.get(AssignmentStatus.LEASED, 0),
        skipped=statuses.get(AssignmentStatus.SKIPPED, 0),
        flagged=statuses.get(AssignmentStatus.FLAGGED, 0),
        median_seconds=statistics.median(times) / 1000 if times else None,
        speeder_threshold_seconds=speeder_threshold_ms(study) / 1000,
    )


def studies_for(user: User) -> Any:
    """Open studies offered to a rater (all studies for a researcher)."""
    from convgen_site.roles import is_researcher

    if is_researcher(user):
        return Study.objects.all()
    return Study.objects.filter(is_open=True).filter(Q(raters=None) | Q(raters=user)).distinct()
