"""Allocation: seeded order, resume, k-coverage, leases, idempotent submit, skip, checks."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from annotation import allocation
from annotation.items import ItemRow
from annotation.models import Assignment, AssignmentStatus, Item, Rating
from annotation.studies import StudySpec, create_study
from tests.annotation.factories import full_scores, make_rater, make_study

pytestmark = pytest.mark.django_db


def _rate_everything(study, rater) -> list[str]:
    """Let one rater rate until nothing is left; returns the external ids in the order seen."""
    seen: list[str] = []
    for _ in range(100):
        assignment = allocation.next_assignment(study, rater)
        if assignment is None:
            return seen
        seen.append(assignment.item.external_id)
        allocation.submit(assignment, full_scores(), submission_key=f"k{assignment.pk}")
    raise AssertionError("the rater never ran out of items")


def test_each_rater_gets_a_seeded_order_that_is_stored_and_reproducible() -> None:
    study = make_study(n_items=12, k=3)
    alice, bob = make_rater("alice"), make_rater("bob")
    order_alice = _rate_everything(study, alice)
    order_bob = _rate_everything(study, bob)
    assert sorted(order_alice) == sorted(order_bob) == sorted(f"it-{i}" for i in range(12))
    assert order_alice != order_bob
    expected = sorted(
        study.items.all(), key=lambda i: allocation.rater_position(study, alice.pk, i.rank)
    )
    assert order_alice == [i.external_id for i in expected]
    stored = Assignment.objects.filter(rater=alice).order_by("position")
    assert [a.item.external_id for a in stored] == order_alice
    assert [a.position for a in stored] == list(range(12))


@pytest.mark.parametrize("n", [1, 2, 7, 12, 100, 1024])
def test_a_rater_permutation_visits_every_rank_once(n: int) -> None:
    for rater_id in range(1, 20):
        perm = allocation.Permutation.for_rater(seed=99, rater_id=rater_id, n=n)
        ranks = [perm.rank(j) for j in range(n)]
        assert sorted(ranks) == list(range(n))
        assert [perm.position(r) for r in ranks] == list(range(n))


def test_the_walk_finds_slots_given_back_behind_the_cursor() -> None:
    study = make_study(n_items=3, k=1)
    first, second = make_rater("first"), make_rater("second")
    taken = allocation.next_assignment(study, first)
    assert taken is not None
    allocation.give_up(taken, AssignmentStatus.SKIPPED, "not for me")
    seen = _rate_everything(study, second)
    assert sorted(seen) == ["it-0", "it-1", "it-2"]


def test_it_resumes_the_assignment_the_rater_left_open() -> None:
    study = make_study()
    rater = make_rater("r1")
    first = allocation.next_assignment(study, rater)
    again = allocation.next_assignment(study, rater)
    assert first is not None and again is not None
    assert again.pk == first.pk
    assert Assignment.objects.filter(rater=rater).count() == 1


def test_every_item_gets_exactly_k_completed_ratings_and_no_rater_repeats() -> None:
    study = make_study(n_items=5, k=3)
    raters = [make_rater(f"r{i}") for i in range(5)]
    per_rater = {r.username: _rate_everything(study, r) for r in raters}
    for seen in per_rater.values():
        assert len(seen) == len(set(seen))
    for item in Item.objects.filter(study=study):
        done = Assignment.objects.filter(item=item, status=AssignmentStatus.COMPLETED).count()
        assert done == item.completed_count == 3
        assert item.leased_count == 0
    assert sum(len(s) for s in per_rater.values()) == 15
    assert Rating.objects.filter(assignment__item__study=study).count() == 15 * 4


def test_a_run_out_lease_is_reclaimed_for_another_rater() -> None:
    study = make_study(n_items=1, k=1)
    slow, fast = make_rater("slow"), make_rater("fast")
    abandoned = allocation.next_assignment(study, slow)
    assert abandoned is not None
    assert allocation.next_assignment(study, fast) is None  # the only slot is leased
    Assignment.objects.filter(pk=abandoned.pk).update(
        leased_until=timezone.now() - timedelta(seconds=1)
    )
    taken = allocation.next_assignment(study, fast)
    assert taken is not None and taken.item_id == abandoned.item_id
    abandoned.refresh_from_db()
    assert abandoned.status == AssignmentStatus.EXPIRED
    with pytest.raises(allocation.LeaseLost):
        allocation.submit(abandoned, full_scores())
    allocation.submit(taken, full_scores())
    item = Item.objects.get()
    assert (item.completed_count, item.leased_count) == (1, 0)


def test_a_rater_back_after_the_lease_ran_out_finishes_if_the_slot_is_still_free() -> None:
    study = make_study(n_items=2, k=1)
    rater = make_rater("back")
    first = allocation.next_assignment(study, rater)
    assert first is not None
    Assignment.objects.filter(pk=first.pk).update(leased_until=timezone.now() - timedelta(hours=1))
    resumed = allocation.next_assignment(study, rater)
    assert resumed is not None and resumed.pk == first.pk
    assert resumed.leased_until is not None and resumed.leased_until > timezone.now()


def test_submitting_twice_stores_one_rating_set() -> None:
    study = make_study(n_items=1, k=2)
    rater = make_rater("double")
    assignment = allocation.next_assignment(study, rater)
    assert assignment is not None
    _, created = allocation.submit(assignment, full_scores(), submission_key="click-1")
    _, replayed = allocation.submit(assignment, full_scores(), submission_key="click-1")
    assert (created, replayed) == (True, False)
    assert Rating.objects.filter(assignment=assignment).count() == 4
    assert Item.objects.get().completed_count == 1


def test_going_back_to_change_a_score_updates_the_same_set() -> None:
    study = make_study(n_items=2, k=2)
    rater = make_rater("changer")
    assignment = allocation.next_assignment(study, rater)
    assert assignment is not None
    allocation.submit(assignment, full_scores(), submission_key="a")
    allocation.submit(assignment, full_scores(score=1), submission_key="b")
    scores = sorted(Rating.objects.filter(assignment=assignment).values_list("score", flat=True))
    assert scores == [1, 1, 1, 1]
    assert Item.objects.get(pk=assignment.item_id).completed_count == 1


def test_skipping_gives_the_slot_back_and_the_rater_moves_on() -> None:
    study = make_study(n_items=2, k=1)
    skipper, other = make_rater("skipper"), make_rater("other")
    first = allocation.next_assignment(study, skipper)
    assert first is not None
    allocation.give_up(first, AssignmentStatus.SKIPPED, "I do not know this topic")
    second = allocation.next_assignment(study, skipper)
    assert second is not None and second.item_id != first.item_id
    taken = allocation.next_assignment(study, other)
    assert taken is not None and taken.item_id == first.item_id
    first.refresh_from_db()
    assert first.skip_reason == "I do not know this topic"


def test_attention_checks_go_to_every_rater_beyond_k() -> None:
    rows = [
        ItemRow("real-1", "bg", "q", "a", "model-a"),
        ItemRow("check-1", "bg", "q", "a", "check", True, {"answer:correctness": 1}),
    ]
    study = create_study(StudySpec(title="t", slug="checks", raters_per_item=1, seed=1), rows)
    raters = [make_rater(f"c{i}") for i in range(3)]
    seen = [_rate_everything(study, r) for r in raters]
    assert all("check-1" in s for s in seen)
    assert Item.objects.get(external_id="check-1").completed_count == 3
    assert Item.objects.get(external_id="real-1").completed_count == 1


def test_a_quota_stops_a_rater_after_that_many_items() -> None:
    study = make_study(n_items=6, k=3, items_per_rater=2)
    rater = make_rater("quota")
    assert len(_rate_everything(study, rater)) == 2


def test_progress_counts_items_done_and_on_offer() -> None:
    study = make_study(n_items=3, k=1)
    rater = make_rater("prog")
    first = allocation.next_assignment(study, rater)
    assert first is not None
    assert allocation.progress(study, rater, first) == allocation.Progress(0, 1, 3)
    allocation.submit(first, full_scores())
    second = allocation.next_assignment(study, rater)
    assert second is not None
    assert allocation.progress(study, rater, second) == allocation.Progress(1, 2, 3)


def test_off_scale_and_missing_scores_are_named() -> None:
    study = make_study()
    with pytest.raises(ValueError) as info:
        allocation.validate_ratings(
            study,
            [
                {"target": "question", "criterion": "correctness", "score": 9},
                {"target": "question", "criterion": "creativity", "score": 2},
                {"target": "answer", "criterion": "correctness", "score": 2},
            ],
        )
    errors = info.value.args[0]
    assert errors["ratings[0].score"] == "score 9 is off the scale 1..3"
    assert errors["answer/creativity"] == "missing a score for answer creativity"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_raters_never_push_an_item_past_k() -> None:
    study = make_study(n_items=6, k=2, slug="race")
    raters = [make_rater(f"t{i}") for i in range(6)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(raters))

    def work(rater) -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(10):
                assignment = allocation.next_assignment(study, rater)
                if assignment is None:
                    break
                allocation.submit(assignment, full_scores(), submission_key=str(assignment.pk))
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in raters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    counts = list(Item.objects.filter(study=study).values_list("completed_count", flat=True))
    assert counts == [2] * 6
    for item in Item.objects.filter(study=study):
        assert item.assignments.filter(status=AssignmentStatus.COMPLETED).count() == 2


def test_an_item_pre_assigned_in_the_admin_comes_first_while_it_has_room() -> None:
    study = make_study(n_items=3, k=1)
    rater, other = make_rater("chosen"), make_rater("other")
    wanted, full = Item.objects.filter(study=study).order_by("pk")[:2]
    Assignment.objects.create(item=wanted, rater=rater, status=AssignmentStatus.PENDING)
    Assignment.objects.create(item=full, rater=rater, status=AssignmentStatus.PENDING, position=1)
    Item.objects.filter(pk=full.pk).update(completed_count=1)  # someone rated it meanwhile
    first = allocation.next_assignment(study, rater)
    assert first is not None and first.item_id == wanted.pk
    assert first.status == AssignmentStatus.LEASED
    allocation.submit(first, full_scores())
    second = allocation.next_assignment(study, rater)
    assert second is not None and second.item_id not in (wanted.pk, full.pk)
    assert Assignment.objects.get(item=full, rater=rater).status == AssignmentStatus.EXPIRED
    assert allocation.next_assignment(study, other) is None


def test_a_closed_study_takes_nothing_more_not_even_open_work() -> None:
    study = make_study(n_items=3, k=1)
    rater = make_rater("closing")
    done = allocation.next_assignment(study, rater)
    assert done is not None
    allocation.submit(done, full_scores(), submission_key="k1")
    open_one = allocation.next_assignment(study, rater)
    assert open_one is not None
    study.is_open = False
    study.save()
    with pytest.raises(allocation.StudyClosed):
        allocation.next_assignment(study, rater)
    with pytest.raises(allocation.StudyClosed):
        allocation.submit(open_one, full_scores())
    with pytest.raises(allocation.StudyClosed):
        allocation.submit(done, full_scores(score=1), submission_key="k2")
    with pytest.raises(allocation.StudyClosed):
        allocation.give_up(open_one, AssignmentStatus.SKIPPED, "later")
    assert allocation.submit(done, full_scores(), submission_key="k1") == (done, False)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_another_rater_holds_is_skipped_not_waited_for() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite serialises writers instead")
    study = make_study(n_items=2, k=1, slug="skiplocked")
    rater = make_rater("waits-not")
    favourite = allocation.candidate_items(study, rater).first()
    assert favourite is not None
    holding, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        try:
            with transaction.atomic():
                Item.objects.select_for_update().get(pk=favourite.pk)
                holding.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    assert holding.wait(timeout=5)
    started = time.monotonic()
    try:
        got = allocation.next_assignment(study, rater)
    finally:
        release.set()
        holder.join(timeout=10)
    assert got is not None and got.item_id != favourite.pk
    assert time.monotonic() - started < 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_rater_is_not_told_done_while_the_last_free_item_is_briefly_locked() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers instead")
    study = make_study(n_items=1, k=2, slug="lastone")
    first, second = make_rater("first-in"), make_rater("second-in")
    assert allocation.next_assignment(study, first) is not None  # one of two slots taken
    item = Item.objects.get(study=study)
    holding = threading.Event()

    def hold_briefly() -> None:  # as a submit or a sweep would
        try:
            with transaction.atomic():
                Item.objects.select_for_update().get(pk=item.pk)
                holding.set()
                time.sleep(0.5)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_briefly)
    holder.start()
    assert holding.wait(timeout=5)
    try:
        got = allocation.next_assignment(study, second)
    finally:
        holder.join(timeout=10)
    assert got is not None and got.item_id == item.pk
