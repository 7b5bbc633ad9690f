"""Simulated raters go through the real allocation path and respect k and the quotas."""

from __future__ import annotations

import pytest
from django.db.models import Count

from annotation.models import Assignment, AssignmentStatus, Rating
from annotation.simulate import simulate_ratings, simulated_raters
from convgen_site.roles import is_rater
from tests.annotation.factories import make_study


@pytest.mark.django_db
def test_simulated_raters_fill_every_item_to_k_and_no_further() -> None:
    study = make_study(n_items=10, k=3, slug="sim")
    raters = simulated_raters("sim-rater", 4)
    assert [r.username for r in raters] == [f"sim-rater-{i}" for i in range(1, 5)]
    assert all(is_rater(r) and not r.has_usable_password() for r in raters)

    summary = simulate_ratings(study, raters, seed=3)

    assert summary.rating_sets == 30  # 10 items x k = 3; the fourth rater finds nothing left
    items = list(study.items.all())
    assert {i.completed_count for i in items} == {3}
    assert {i.leased_count for i in items} == {0}
    per_pair = Assignment.objects.filter(item__study=study).values("item", "rater")
    assert per_pair.annotate(n=Count("id")).filter(n__gt=1).count() == 0
    assert Rating.objects.filter(assignment__item__study=study).count() == 30 * 4
    scores = set(Rating.objects.values_list("score", flat=True))
    assert scores <= {1, 2, 3} and len(scores) > 1


@pytest.mark.django_db
def test_a_quota_leaves_items_open_for_real_raters() -> None:
    for slug in ("a", "b"):
        study = make_study(n_items=6, k=2, slug=slug)
        raters = simulated_raters(f"{slug}-r", 2)
        summary = simulate_ratings(study, raters, items_per_rater=4, seed=9)
        assert summary.rating_sets == 8
        counts = list(study.items.values_list("completed_count", flat=True))
        assert sum(counts) == 8 and max(counts) <= 2  # 12 slots, 8 filled
        assert study.items.filter(completed_count__lt=2).exists()
        assert not Assignment.objects.filter(
            item__study=study, status=AssignmentStatus.LEASED
        ).exists()
        assert Rating.objects.filter(assignment__item__study=study).count() == 8 * 4


@pytest.mark.django_db
def test_questions_get_the_configured_advantage_on_average() -> None:
    study = make_study(n_items=200, k=1, slug="adv")
    simulate_ratings(study, simulated_raters("adv", 1), question_advantage=0.8, seed=1)
    ratings = Rating.objects.filter(assignment__item__study=study)
    mean = {
        t: sum(ratings.filter(target=t).values_list("score", flat=True))
        / ratings.filter(target=t).count()
        for t in ("question", "answer")
    }
    assert mean["question"] - mean["answer"] > 0.3
