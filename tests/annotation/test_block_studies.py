"""Studies that mix systems on shared Backgrounds (issue 14): blocks, reference conversations of
a prepared dataset, and "no rater sees the same Background twice" with exactly k per item."""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from annotation import allocation
from annotation.items import REFERENCE_SOURCE, ItemRow, block_key
from annotation.models import Assignment, AssignmentStatus, Item, Study
from annotation.studies import StudySpec, create_study
from modeling.models import Conversation, Dataset, GenerationRun, RunStatus
from tests.annotation.factories import full_scores, make_rater

pytestmark = pytest.mark.django_db

BACKGROUNDS = [
    "The Nile flows north through eleven countries.",
    "Honey bees live in colonies with one queen.",
    "A triangle's interior angles sum to 180 degrees.",
    "Sleep helps the brain consolidate memories.",
]


def _record(i: int, background: str) -> dict[str, object]:
    return {
        "id": f"rec{i}",
        "background": background,
        "turns": [
            {"role": "human", "text": f"Human question {i}?"},
            {"role": "bot", "text": f"Human-written answer {i}."},
        ],
    }


def _dataset(tmp_path: Path) -> Dataset:
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "train.jsonl").write_text(
        "\n".join(json.dumps(_record(i, b)) for i, b in enumerate(BACKGROUNDS[:3])) + "\n",
        encoding="utf-8",
    )
    (out / "val.jsonl").write_text(json.dumps(_record(3, BACKGROUNDS[3])) + "\n", encoding="utf-8")
    return Dataset.objects.create(
        name="oig", source_path="x.jsonl", output_dir=str(out), status=RunStatus.SUCCEEDED
    )


def _run(name: str, backgrounds: list[str]) -> GenerationRun:
    run = GenerationRun.objects.create(
        name=name, base_model="m", input_path="in.jsonl", output_path=f"{name}.jsonl"
    )
    for i, background in enumerate(backgrounds):
        Conversation.objects.create(
            run=run, record_id=f"r{i}", background=background, question="Q?", answer="A.",
            position=i,
        )  # fmt: skip
    return run


def test_the_block_is_the_cleaned_background_so_markup_and_spacing_do_not_split_it() -> None:
    assert block_key("The <b>Nile</b>  flows\nnorth.") == block_key("The Nile flows north.")
    assert block_key("The Nile flows north.") != block_key("The Nile flows south.")


def test_create_study_mixes_runs_with_the_reference_conversations_of_the_same_backgrounds(
    tmp_path: Path,
) -> None:
    dataset = _dataset(tmp_path)
    # Two systems on the first three Backgrounds; one writes them with markup and two samples.
    lora = _run("lora", BACKGROUNDS[:3])
    base = _run("base", [f"<p>{b}</p>" for b in BACKGROUNDS[:3]] + [BACKGROUNDS[0]])
    out = io.StringIO()
    call_command(
        "create_study", slug="mix", run=[lora.pk, base.pk], reference=[dataset.pk],
        one_background_per_rater=True, k=1, seed=1, stdout=out,
    )  # fmt: skip
    assert "10 items (0 attention checks) from 3 source(s)" in out.getvalue()
    assert "3 Background(s), one Background per rater" in out.getvalue()
    study = Study.objects.get(slug="mix")
    assert study.one_background_per_rater
    by_block = Counter(study.items.values_list("block", flat=True))
    assert sorted(by_block.values()) == [3, 3, 4]  # 4th Background: no generated item, left out
    refs = study.items.filter(source=REFERENCE_SOURCE).order_by("external_id")
    first = refs[0]
    assert (first.question, first.answer) == ("Human question 0?", "Human-written answer 0.")
    assert {r.block for r in refs} == set(by_block)

    # Without other items, every reference conversation of the chosen split.
    call_command(
        "create_study", slug="refs", reference=[dataset.pk], reference_split="val",
        stdout=io.StringIO(),
    )  # fmt: skip
    assert list(Study.objects.get(slug="refs").items.values_list("source", flat=True)) == [
        REFERENCE_SOURCE
    ]
    with pytest.raises(CommandError, match="no such prepared dataset"):
        call_command("create_study", slug="x", reference=[9999], stdout=io.StringIO())


def test_a_reference_file_with_turns_adds_the_reference_system(tmp_path: Path) -> None:
    lora = _run("lora", BACKGROUNDS[:2])
    path = tmp_path / "backgrounds.jsonl"
    path.write_text(
        "\n".join(json.dumps(_record(i, b)) for i, b in enumerate(BACKGROUNDS)) + "\n",
        encoding="utf-8",
    )
    call_command(
        "create_study", slug="f", run=[lora.pk], reference_file=[str(path)], stdout=io.StringIO()
    )
    sources = Counter(Study.objects.get(slug="f").items.values_list("source", flat=True))
    assert sources == {"lora": 2, REFERENCE_SOURCE: 2}


def test_the_new_study_form_adds_a_datasets_reference_conversations(
    researcher_client: Client, tmp_path: Path
) -> None:
    dataset = _dataset(tmp_path)
    run = _run("lora", BACKGROUNDS[:2])
    response = researcher_client.post(
        "/annotation/new/",
        {
            "title": "Systems", "slug": "systems", "scale": "1-3", "raters_per_item": 2,
            "items_per_rater": 0, "lease_minutes": 10, "runs": [run.pk],
            "reference_dataset": dataset.pk, "one_background_per_rater": "on",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    study = Study.objects.get(slug="systems")
    assert study.one_background_per_rater
    assert Counter(study.items.values_list("source", flat=True)) == {"lora": 2, "reference": 2}


def _block_study(n_blocks: int = 4, n_systems: int = 3, k: int = 2, slug: str = "blocks") -> Study:
    rows = [
        ItemRow(
            external_id=f"sys{s}-bg{b}",
            background=f"Background {b} about rivers.",
            question=f"Q{s}.{b}?",
            answer=f"A{s}.{b}.",
            source=f"system-{s}",
        )
        for b in range(n_blocks)
        for s in range(n_systems)
    ]
    spec = StudySpec(
        title="Blocks", slug=slug, raters_per_item=k, seed=5, one_background_per_rater=True
    )
    return create_study(spec, rows)


def _check_blocks_and_k(study: Study, k: int) -> None:
    per_rater_block = Counter(
        Assignment.objects.filter(item__study=study).values_list("rater_id", "item__block")
    )
    assert max(per_rater_block.values()) == 1, "a rater was given one Background twice"
    counts = list(Item.objects.filter(study=study).values_list("completed_count", flat=True))
    assert counts == [k] * len(counts)
    for item in Item.objects.filter(study=study):
        assert item.assignments.filter(status=AssignmentStatus.COMPLETED).count() == k


def test_no_rater_sees_a_background_twice_and_every_item_still_gets_exactly_k() -> None:
    study = _block_study()
    raters = [make_rater(f"b{i}") for i in range(6)]  # 4 Backgrounds x 3 systems x k 2 = 6 x 4
    progressed = True
    while progressed:
        progressed = False
        for rater in raters:
            assignment = allocation.next_assignment(study, rater)
            if assignment is not None:
                allocation.submit(assignment, full_scores(), submission_key=f"k{assignment.pk}")
                progressed = True
    _check_blocks_and_k(study, 2)
    assert allocation.progress(study, raters[0]).total == 4  # one item per Background


def test_a_skipped_background_stays_seen_and_others_take_its_slot() -> None:
    study = _block_study(n_blocks=1, n_systems=2, k=1, slug="skip")
    first, second = make_rater("first"), make_rater("second")
    taken = allocation.next_assignment(study, first)
    assert taken is not None
    allocation.give_up(taken, AssignmentStatus.SKIPPED, "not my topic")
    assert allocation.next_assignment(study, first) is None  # saw that Background already
    for _ in range(2):
        assignment = allocation.next_assignment(study, second)
        if assignment is not None:
            allocation.submit(assignment, full_scores(), submission_key=f"s{assignment.pk}")
    # The second rater may take only one of the two items: the other waits for a third rater.
    assert Item.objects.filter(study=study, completed_count=1).count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_raters_never_see_a_background_twice_nor_push_an_item_past_k() -> None:
    """Each rater asks from two threads at once (a double click) while the others race."""
    study = _block_study(slug="race-blocks")
    raters = [make_rater(f"c{i}") for i in range(6)]
    errors: list[BaseException] = []
    workers = [r for r in raters for _ in range(2)]
    barrier = threading.Barrier(len(workers))

    def work(rater) -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(20):
                assignment = allocation.next_assignment(study, rater)
                if assignment is None:
                    break
                try:
                    allocation.submit(assignment, full_scores(), submission_key=str(assignment.pk))
                except allocation.LeaseLost:
                    continue
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    _check_blocks_and_k(study, 2)
