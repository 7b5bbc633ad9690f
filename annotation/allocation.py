"""Who rates what next: leases, k-coverage, submission; every lock a rater's request takes.

Invariants (tested in tests/annotation/test_allocation.py):
- every non-attention item ends with at most k completed ratings (completed_count <= k),
- a rater never gets the same item twice (unique (item, rater) plus the NOT EXISTS filter),
- a lease that runs out frees its slot for someone else,
- submitting the same assignment twice stores one rating set.

Locking. On PostgreSQL, candidate items are locked with ``SELECT ... FOR UPDATE SKIP LOCKED``:
two raters asking at once take different items instead of queueing on one row, and the counters
of a locked item can be checked and bumped without a race. Every path locks the item row before
the assignment row, so the paths cannot deadlock with each other. On SQLite there are no row
locks; the settings open every transaction with ``BEGIN IMMEDIATE``, which takes the database's
single write lock at the start, so the read-check-write below runs serialised and is just as
exact (slower under load, which is why production uses PostgreSQL). Two other places lock
rows: a ratings import locks the items it rewrites (`annotation.rating_files`, in id order), and
the last shard of a generation run locks the run to merge (`modeling.generate_service`).

About 500 lines, kept as one module so that every locking path can be read side by side.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import BigIntegerField, Count, Exists, F, Max, Min, OuterRef, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from annotation.models import Assignment, AssignmentStatus, Item, Rating, Study

SWEEP_BATCH = 50
SWEEP_INTERVAL_S = 15.0
_last_sweep: dict[int, float] = {}  # study id -> time.monotonic() of this process's last sweep
WALK_BATCH = 64  # items looked at per step along the rater's order
WALK_STEPS = 4  # steps before falling back to one scan of the whole study
SKIPPED_ROW_RETRY_S = (0.05, 0.1, 0.2, 0.4, 0.4)  # looks again when only held rows remain
SUBMISSION_KEY_MAX = 64  # Assignment.submission_key's max_length


class AllocationError(Exception):
    """A rater's request cannot be honoured (closed study, lost lease, ...)."""

    code = "invalid"


class StudyClosed(AllocationError):
    code = "study_closed"


class LeaseLost(AllocationError):
    """The lease ran out and the item's k slots were taken by others meanwhile."""

    code = "lease_lost"


@dataclass(frozen=True)
class Progress:
    """How far one rater is in one study: item `current` of `total`, `done` of them finished."""

    done: int
    current: int
    total: int


@dataclass(frozen=True)
class Permutation:
    """A rater's order of a study's n item ranks: rank(j) = (a * j + b) mod n, j = 0, 1, ...

    Derived from (study seed, rater id) alone, so it is reproducible and needs no storage; the
    position j of each item a rater was given is stored on the Assignment. Item ranks are
    themselves a seeded shuffle of the study, so every rater sees the items in a different order.
    """

    n: int
    a: int
    b: int

    @classmethod
    def for_rater(cls, seed: int, rater_id: int, n: int) -> Permutation:
        n = max(n, 1)
        digest = hashlib.sha256(f"{seed}:{rater_id}".encode()).digest()
        a = 1 + int.from_bytes(digest[:8], "big") % max(n - 1, 1)
        while math.gcd(a, n) != 1:  # a must be invertible mod n for this to be a permutation
            a += 1
        return cls(n=n, a=a % n if n > 1 else 0, b=int.from_bytes(digest[8:16], "big") % n)

    @property
    def a_inverse(self) -> int:
        return pow(self.a, -1, self.n) if self.n > 1 else 0

    def rank(self, position: int) -> int:
        return (self.a * position + self.b) % self.n

    def position(self, rank: int) -> int:
        return ((rank - self.b) * self.a_inverse) % self.n

    def position_sql(self) -> Any:
        """The same as position(), as a database expression over Item.rank (bigint-safe)."""
        rank = Cast("rank", BigIntegerField())
        return ((rank + (self.n - self.b)) % self.n) * self.a_inverse % self.n


def study_size(study: Study) -> int:
    """n of the permutation: ranks run 0..max (items added later extend it)."""
    top = Item.objects.filter(study=study).aggregate(top=Max("rank"))["top"]
    return int(top) + 1 if top is not None else 1


def rater_position(study: Study, rater_id: int, rank: int) -> int:
    return Permutation.for_rater(int(study.seed), rater_id, study_size(study)).position(rank)


def _can_lock_skip() -> bool:
    return bool(connection.features.has_select_for_update_skip_locked)


def _lock_item(item_id: int) -> Item:
    """Lock one item row (no-op on SQLite, where the IMMEDIATE transaction already serialises)."""
    return Item.objects.select_for_update().get(pk=item_id)


def _lock_assignment(assignment_id: int) -> Assignment:
    return Assignment.objects.select_for_update().select_related("item").get(pk=assignment_id)


def _is_open(study: Study) -> bool:
    """Whether the study is open now (read again: it may have been closed since it was loaded)."""
    return Study.objects.filter(pk=study.pk, is_open=True).exists()


def may_rate(study: Study, user: User) -> bool:
    """Whether the study is offered to this user (empty rater list = every rater)."""
    allowed = list(study.raters.values_list("pk", flat=True))
    return not allowed or user.pk in allowed


def _has_capacity(item: Item, k: int) -> bool:
    return item.is_attention_check or item.completed_count + item.leased_count < k


def _lease(assignment: Assignment, study: Study, now: Any) -> Assignment:
    assignment.leased_until = now + timedelta(seconds=study.lease_seconds)
    if assignment.started_at is None:
        assignment.started_at = now
    assignment.save(update_fields=["leased_until", "started_at", "status"])
    return assignment


def sweep_expired(study: Study, limit: int = SWEEP_BATCH, exclude_rater: User | None = None) -> int:
    """Expire up to `limit` run-out leases in the study, giving their slots back; returns how many.

    The asking rater's own run-out lease is left alone: they are back and resume it.
    """
    now = timezone.now()
    expired = Assignment.objects.filter(
        item__study=study, status=AssignmentStatus.LEASED, leased_until__lt=now
    )
    if exclude_rater is not None:
        expired = expired.exclude(rater=exclude_rater)
    ids = list(expired.values_list("pk", "item_id")[:limit])
    reclaimed = 0
    for assignment_id, item_id in ids:
        with transaction.atomic():
            items = Item.objects.filter(pk=item_id)
            if _can_lock_skip():
                # Someone is working on this item right now: leave it for the next sweep.
                items = items.select_for_update(skip_locked=True)
            if not items.exists():
                continue
            # Re-check under the lock: the rater may have submitted or come back meanwhile.
            updated = Assignment.objects.filter(
                pk=assignment_id, status=AssignmentStatus.LEASED, leased_until__lt=now
            ).update(status=AssignmentStatus.EXPIRED)
            if updated:
                Item.objects.filter(pk=item_id).update(leased_count=F("leased_count") - 1)
                reclaimed += 1
    return reclaimed


def _quota_reached(study: Study, rater: User) -> bool:
    if not study.items_per_rater:
        return False
    held = Assignment.objects.filter(
        item__study=study, rater=rater, status__in=[AssignmentStatus.COMPLETED]
    ).count()
    return held >= study.items_per_rater


def _rater_state(study: Study, rater: User) -> dict[str, Any]:
    """In one query: the rater's last position, open lease and number of pre-assigned items."""
    return Assignment.objects.filter(item__study=study, rater=rater).aggregate(
        last=Max("position"),
        leased=Min("pk", filter=Q(status=AssignmentStatus.LEASED)),
        pending=Count("pk", filter=Q(status=AssignmentStatus.PENDING)),
    )


def _resume(study: Study, rater: User, state: dict[str, Any]) -> Assignment | None:
    """The rater's open assignment (leased, even if run out but not yet swept), lease renewed."""
    now = timezone.now()
    open_ids: list[int] = [state["leased"]] if state["leased"] else []
    if state["pending"]:
        # Items a researcher pre-assigned (admin), in the rater's order.
        open_ids += list(
            Assignment.objects.filter(
                item__study=study, rater=rater, status=AssignmentStatus.PENDING
            )
            .order_by("position", "pk")
            .values_list("pk", flat=True)
        )
    for assignment_id in open_ids:
        with transaction.atomic():
            item_id = Assignment.objects.values_list("item_id", flat=True).get(pk=assignment_id)
            item = _lock_item(item_id)
            assignment = _lock_assignment(assignment_id)
            if assignment.status == AssignmentStatus.LEASED:
                # A run-out lease nobody swept still holds its slot, so the rater may carry on.
                return _lease(assignment, study, now)
            if assignment.status != AssignmentStatus.PENDING:
                continue
            if _has_capacity(item, study.raters_per_item):
                assignment.status = AssignmentStatus.LEASED
                Item.objects.filter(pk=item_id).update(leased_count=F("leased_count") + 1)
                return _lease(assignment, study, now)
            assignment.status = AssignmentStatus.EXPIRED  # pre-assigned, but k was reached
            assignment.save(update_fields=["status"])
    return None


def candidate_items(
    study: Study, rater: User, perm: Permutation | None = None, ranks: list[int] | None = None
) -> QuerySet[Item]:
    """Items this rater has not seen that still have room, in the rater's seeded order."""
    perm = perm or Permutation.for_rater(int(study.seed), int(rater.pk), study_size(study))
    items = open_items(study, rater)
    if ranks is not None:
        items = items.filter(rank__in=ranks)
    return items.annotate(rater_position=perm.position_sql()).order_by("rater_position", "pk")


def open_items(study: Study, rater: User) -> QuerySet[Item]:
    """Items with a free slot (attention checks always have one) that the rater has not seen.

    With ``one_background_per_rater``, items whose Background (block) the rater was given
    before, in any status, are left out too. A rater's requests run one at a time (the user row
    is locked on PostgreSQL, the database on SQLite), so two items of one block cannot be
    leased to the same rater by concurrent requests.
    """
    seen = Assignment.objects.filter(item=OuterRef("pk"), rater=rater)
    items = (
        Item.objects.filter(study=study)
        .filter(
            Q(is_attention_check=True)
            | Q(completed_count__lt=study.raters_per_item - F("leased_count"))
        )
        .filter(~Exists(seen))
    )
    if study.one_background_per_rater:
        same_block = Assignment.objects.filter(
            item__study=study, rater=rater, item__block=OuterRef("block")
        )
        items = items.filter(Q(block="") | ~Exists(same_block))
    return items


def _pick(study: Study, rater: User, last: int | None) -> Item | None:
    """Lock the first free item along the rater's order (skipping rows others have locked).

    Walks the order in batches from just after the rater's last position (index lookups on
    (study, rank)), and only when the next few batches are all taken scans the whole study, which
    also finds slots given back behind the cursor (expired leases, skips).
    """
    perm = Permutation.for_rater(int(study.seed), int(rater.pk), study_size(study))
    cursor = int(last) + 1 if last is not None else 0
    windows: list[list[int] | None] = []
    for step in range(WALK_STEPS):
        start = cursor + step * WALK_BATCH
        if start >= perm.n:
            break
        windows.append([perm.rank(j) for j in range(start, min(start + WALK_BATCH, perm.n))])
    windows.append(None)  # the whole study
    for ranks in windows:
        candidates = candidate_items(study, rater, perm, ranks)
        if _can_lock_skip():
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        item = candidates.first()
        if item is not None:
            return item
    if not _can_lock_skip():
        return None
    # Nothing free, or only rows someone holds for a moment (a submit, a sweep, another rater's
    # pick). Rather than tell the rater "nothing left" while items still have room, look again a
    # few times. Never a blocking wait: waiting for one row while holding rows that failed their
    # re-check could deadlock two raters; skipping cannot.
    for delay in SKIPPED_ROW_RETRY_S:
        if not candidate_items(study, rater, perm).exists():
            return None  # really nothing left for this rater
        time.sleep(delay)
        item = (
            candidate_items(study, rater, perm)
            .select_for_update(skip_locked=True, of=("self",))
            .first()
        )
        if item is not None:
            return item
    return None


def _sweep_due(study: Study) -> bool:
    """At most one routine sweep per study every SWEEP_INTERVAL_S seconds in each process."""
    now = time.monotonic()
    if now - _last_sweep.get(study.pk, -SWEEP_INTERVAL_S) < SWEEP_INTERVAL_S:
        return False
    _last_sweep[study.pk] = now
    return True


def next_assignment(study: Study, rater: User) -> Assignment | None:
    """The rater's next assignment: the one they left open, else a fresh lease; None when done.

    Run-out leases are swept now and then, and always before telling a rater there is nothing
    left, so a slot held by someone who walked away is never lost for good.
    """
    if _sweep_due(study):
        sweep_expired(study, exclude_rater=rater)
    assignment = _next_in_transaction(study, rater)
    if assignment is None and sweep_expired(study, exclude_rater=rater):
        assignment = _next_in_transaction(study, rater)
    return assignment


def _next_in_transaction(study: Study, rater: User) -> Assignment | None:
    now = timezone.now()
    with transaction.atomic():
        if _can_lock_skip():
            # One request per rater at a time: a double click must not lease two items.
            User.objects.select_for_update().filter(pk=rater.pk).exists()
        if not _is_open(study):
            raise StudyClosed("this study is closed")  # even an open lease: closed is closed
        state = _rater_state(study, rater)
        resumed = _resume(study, rater, state)
        if resumed is not None:
            return resumed
        if _quota_reached(study, rater):
            return None
        item = _pick(study, rater, state["last"])
        if item is None:
            return None
        # The row is locked (PostgreSQL) or the database is (SQLite): the counters are current.
        if not _has_capacity(item, study.raters_per_item):
            return None
        Item.objects.filter(pk=item.pk).update(leased_count=F("leased_count") + 1)
        return Assignment.objects.create(
            item=item,
            rater=rater,
            position=item.rater_position,  # type: ignore[attr-defined]
            status=AssignmentStatus.LEASED,
            leased_until=now + timedelta(seconds=study.lease_seconds),
            started_at=now,
        )


def validate_ratings(study: Study, ratings: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Check one full rating set against the study; returns {(target, criterion): score}.

    Raises ``ValueError`` with a {field: message} dict as its argument when something is wrong.
    """
    wanted = study.criteria_keys
    scores: dict[tuple[str, str], int] = {}
    errors: dict[str, str] = {}
    for index, entry in enumerate(ratings):
        if not isinstance(entry, dict):
            errors[f"ratings[{index}]"] = "each rating is an object with target, criterion, score"
            continue
        key = (str(entry.get("target", "")), str(entry.get("criterion", "")))
        if key not in wanted:
            errors[f"ratings[{index}]"] = f"unknown criterion {key[0]}/{key[1]}"
            continue
        if key in scores:
            errors[f"ratings[{index}]"] = f"{key[0]}/{key[1]} is given twice"
            continue
        raw = entry.get("score")
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            errors[f"ratings[{index}].score"] = "score must be a whole number"
            continue
        try:
            score = int(raw)
        except ValueError:
            errors[f"ratings[{index}].score"] = "score must be a whole number"
            continue
        if not study.scale_min <= score <= study.scale_max:
            errors[f"ratings[{index}].score"] = (
                f"score {score} is off the scale {study.scale_min}..{study.scale_max}"
            )
            continue
        scores[key] = score
    given = {
        (str(e.get("target", "")), str(e.get("criterion", "")))
        for e in ratings
        if isinstance(e, dict)
    }
    for target, criterion in wanted:
        if (target, criterion) not in given:
            errors[f"{target}/{criterion}"] = f"missing a score for {target} {criterion}"
    if errors:
        raise ValueError(errors)
    return scores


def submit(
    assignment: Assignment,
    scores: dict[tuple[str, str], int],
    *,
    time_spent_ms: int | None = None,
    submission_key: str = "",
) -> tuple[Assignment, bool]:
    """Store one rating set; returns (assignment, created): created is True only for the call
    that completed the assignment (not for a replay, a change or a concurrent duplicate).

    The same submission_key again (double click, retry after a lost response) changes nothing.
    A new key on a completed assignment is the rater going back to change their scores.
    A closed study takes no ratings (StudyClosed).
    """
    if len(submission_key) > SUBMISSION_KEY_MAX:
        raise ValueError(f"a submission key has at most {SUBMISSION_KEY_MAX} characters")
    study = assignment.item.study
    now = timezone.now()
    with transaction.atomic():
        item = _lock_item(assignment.item_id)
        locked = _lock_assignment(assignment.pk)
        if (
            submission_key
            and locked.submission_key == submission_key
            and locked.status == AssignmentStatus.COMPLETED
        ):
            return locked, False  # a replay changes nothing, even once the study is closed
        if not _is_open(study):
            raise StudyClosed("this study is closed")
        if locked.status == AssignmentStatus.LEASED:
            Item.objects.filter(pk=item.pk).update(
                leased_count=F("leased_count") - 1, completed_count=F("completed_count") + 1
            )
        elif locked.status != AssignmentStatus.COMPLETED:
            # Expired, skipped, flagged or pending: the slot was given back, so take one again.
            if not _has_capacity(item, study.raters_per_item):
                raise LeaseLost("this item already has all its ratings; please take the next one")
            Item.objects.filter(pk=item.pk).update(completed_count=F("completed_count") + 1)
        first_time = locked.status != AssignmentStatus.COMPLETED
        # One upsert on the (assignment, target, criterion) key: a resubmit rewrites the same rows.
        Rating.objects.bulk_create(
            [
                Rating(assignment=locked, target=t, criterion=c, score=score, updated_at=now)
                for (t, c), score in scores.items()
            ],
            update_conflicts=True,
            unique_fields=["assignment", "target", "criterion"],
            update_fields=["score", "updated_at"],
        )
        locked.status = AssignmentStatus.COMPLETED
        locked.leased_until = None
        locked.submission_key = submission_key
        if first_time:
            locked.completed_at = now
            locked.time_spent_ms = _time_spent(locked, now, time_spent_ms)
            locked.skip_reason = ""
            locked.flag_reason = ""
        locked.save()
    return locked, first_time


def _time_spent(assignment: Assignment, now: Any, reported: int | None) -> int | None:
    """Time on item: the browser's measure when plausible, else wall time since first shown."""
    wall = (
        int((now - assignment.started_at).total_seconds() * 1000) if assignment.started_at else None
    )
    if reported is not None and reported >= 0 and (wall is None or reported <= wall + 5000):
        return int(reported)
    return wall


def give_up(assignment: Assignment, status: str, reason: str) -> Assignment:
    """Skip (with a reason) or flag (a broken item); the slot goes back to the pool."""
    if status not in (AssignmentStatus.SKIPPED, AssignmentStatus.FLAGGED):
        raise ValueError(f"cannot give up with status {status}")
    with transaction.atomic():
        item = _lock_item(assignment.item_id)
        locked = _lock_assignment(assignment.pk)
        if not _is_open(assignment.item.study):
            raise StudyClosed("this study is closed")
        if locked.status == AssignmentStatus.LEASED:
            Item.objects.filter(pk=item.pk).update(leased_count=F("leased_count") - 1)
        elif locked.status == AssignmentStatus.COMPLETED:
            Item.objects.filter(pk=item.pk).update(completed_count=F("completed_count") - 1)
            locked.ratings.all().delete()
        locked.status = status
        locked.leased_until = None
        if status == AssignmentStatus.SKIPPED:
            locked.skip_reason = reason[:500]
        else:
            locked.flag_reason = reason[:500]
        locked.save()
    return locked


def progress(study: Study, rater: User, current: Assignment | None = None) -> Progress:
    """'Item 12 of 40': the rater's own items so far, of the most they may rate.

    Counts only what is the rater's own and what the study fixes (its items, the quota), never
    how many slots others have taken: what a rater sees says nothing about other raters.
    """
    mine = Assignment.objects.filter(item__study=study, rater=rater).exclude(
        status=AssignmentStatus.EXPIRED
    )
    done = mine.filter(status=AssignmentStatus.COMPLETED).count()
    seen = mine.count()
    total = Item.objects.filter(study=study).count()
    if study.one_background_per_rater:  # at most one item of each Background
        items = Item.objects.filter(study=study)
        blocks = items.exclude(block="").values("block").distinct().count()
        total = blocks + items.filter(block="").count()
    if study.items_per_rater:
        skipped = mine.exclude(status__in=[AssignmentStatus.COMPLETED, AssignmentStatus.LEASED])
        total = min(total, study.items_per_rater + skipped.count())
    if current is not None:
        position = mine.filter(pk__lte=current.pk).count()
    else:
        position = min(seen + 1, total)
    return Progress(done=done, current=position, total=max(total, position, seen))
