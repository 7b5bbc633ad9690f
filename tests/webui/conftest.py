"""Fixtures of the browser-facing pages: OIG uploads, a prepared dataset, a rated generation run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from modeling.models import Conversation, Dataset, GenerationRun, RunStatus
from tests.data.conftest import HAND_BUILT
from tests.factories import make_user
from tests.training.conftest import write_data

HAND_BUILT_BYTES = "".join(line + "\n" for line, _ in HAND_BUILT).encode("utf-8")


def oig_upload(body: bytes = HAND_BUILT_BYTES, name: str = "hand.jsonl") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, body, content_type="application/jsonl")


@pytest.fixture
def prepared_dataset(db: None, tmp_path: Path) -> Dataset:
    """A succeeded Dataset row over a small train.jsonl / val.jsonl (32 / 8 records)."""
    out = write_data(tmp_path / "prepared")
    return Dataset.objects.create(
        name="small",
        source_path=str(tmp_path / "src.jsonl"),
        output_dir=str(out),
        status=RunStatus.SUCCEEDED,
        n_train=32,
        n_val=8,
    )


RECORDS: list[dict[str, Any]] = [
    {
        "id": "r0",
        "background": "The river flows north through the valley.",
        "turns": [
            {"role": "human", "text": "Which way does the river flow?"},
            {"role": "bot", "text": "North."},
        ],
        "parse_ok": True,
    },
    {
        "id": "r1",
        "background": "ภาษาไทยเป็นภาษาราชการของประเทศไทย",
        "turns": [
            {"role": "human", "text": "ภาษาราชการของไทยคืออะไร"},
            {"role": "bot", "text": "ภาษาไทย"},
        ],
        "parse_ok": True,
    },
    {
        "id": "r2",
        "background": "A prime number has exactly two divisors.",
        "turns": [{"role": "human", "text": "How many"}],
        "parse_ok": False,
    },
    {
        "id": "r3",
        "background": "Oxygen is released by plants.",
        "turns": [
            {"role": "human", "text": "What do plants release?"},
            {"role": "bot", "text": "Oxygen."},
        ],
        "parse_ok": True,
    },
]


@pytest.fixture
def generation_run(db: None) -> GenerationRun:
    """A succeeded run of four conversations (r2 failed to parse), no study yet."""
    run = GenerationRun.objects.create(
        name="gen", base_model="m", input_path="i", output_path="o", status=RunStatus.SUCCEEDED
    )
    for i, r in enumerate(RECORDS):
        turns = r["turns"]
        Conversation.objects.create(
            run=run,
            record_id=r["id"],
            position=i,
            background=r["background"],
            question=turns[0]["text"],
            answer=turns[1]["text"] if len(turns) > 1 else "",
            turns=turns,
            parse_ok=r["parse_ok"],
        )
    return run


@pytest.fixture
def rated_run(generation_run: GenerationRun) -> GenerationRun:
    """The run rated by two raters in study "rated": r0 and r1 (r2, r3 unrated).

    Mean correctness: answer r0 (3+2)/2 = 2.5, r1 (2+2)/2 = 2.0; question r0 2.0, r1 3.0.
    """
    from annotation.models import Assignment, AssignmentStatus, Item, Rating, Study

    study = Study.objects.create(slug="rated", title="Rated study", raters_per_item=2)
    raters = [make_user(username=f"rater{k}") for k in range(2)]
    scores = {
        "r0": {"answer": (3, 2), "question": (2, 2)},
        "r1": {"answer": (2, 2), "question": (3, 3)},
    }
    for conv in generation_run.conversations.filter(record_id__in=scores):
        item = Item.objects.create(
            study=study, external_id=conv.record_id, conversation=conv, completed_count=2
        )
        for k, rater in enumerate(raters):
            a = Assignment.objects.create(item=item, rater=rater, status=AssignmentStatus.COMPLETED)
            for target, values in scores[conv.record_id].items():
                Rating.objects.create(
                    assignment=a, target=target, criterion="correctness", score=values[k]
                )
    return generation_run
