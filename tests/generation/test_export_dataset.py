"""`manage.py export_dataset`: OIG text that `prepare` reads back, chat messages, rating filters."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from modeling.models import Conversation, GenerationRun
from modeling.oig.prepare import prepare
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

RECORDS: list[dict[str, Any]] = [
    {
        "id": "r0",
        "background": "The river flows north through the valley.",
        "question": "Which way does the river flow?",
        "answer": "North. Examples include: the valley.",
        "turns": [
            {"role": "human", "text": "Which way does the river flow?"},
            {"role": "bot", "text": "North. Examples include: the valley."},
        ],
        "parse_ok": True,
    },
    {
        "id": "r1",
        "background": "ภาษาไทยเป็นภาษาราชการของประเทศไทย",
        "question": "ภาษาราชการของไทยคืออะไร",
        "answer": "ภาษาไทย",
        "turns": [
            {"role": "human", "text": "ภาษาราชการของไทยคืออะไร"},
            {"role": "bot", "text": "ภาษาไทย"},
            {"role": "human", "text": "Is it written with its own script?"},
            {"role": "bot", "text": "Yes, the Thai script."},
        ],
        "parse_ok": True,
    },
    {
        "id": "r2",
        "background": "A prime number has exactly two divisors.",
        "question": "How many",
        "answer": "",
        "turns": [{"role": "human", "text": "How many"}],
        "parse_ok": False,
    },
]


def _export(*args: str) -> str:
    out = io.StringIO()
    call_command("export_dataset", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def records_file(tmp_path: Path) -> Path:
    path = tmp_path / "out.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS), "utf-8")
    return path


def test_oig_export_round_trips_through_prepare_data(records_file: Path, tmp_path: Path) -> None:
    oig = tmp_path / "oig.jsonl"
    stdout = _export("--input", str(records_file), "--format", "oig", "--output", str(oig))
    assert "wrote 2 of 3 conversations" in stdout
    first = json.loads(oig.read_text(encoding="utf-8").splitlines()[0])
    assert first["text"] == (
        "Background: The river flows north through the valley."
        "<human>: Which way does the river flow?<bot>: North. Examples include: the valley."
    )
    result = prepare(oig, tmp_path / "prepared", val_fraction=0.0)
    assert result.n_train == 2
    back = [json.loads(x) for x in result.train_path.read_text(encoding="utf-8").splitlines()]
    assert sorted((r["background"], r["turns"]) for r in back) == sorted(
        (r["background"], r["turns"]) for r in RECORDS[:2]
    )


def test_messages_export_loads_with_datasets(records_file: Path, tmp_path: Path) -> None:
    import datasets

    out = tmp_path / "chat.jsonl"
    _export("--input", str(records_file), "--format", "messages", "--output", str(out))
    ds = datasets.load_dataset(
        "json", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert ds.num_rows == 2
    assert ds[0]["messages"] == [
        {"role": "system", "content": "Background: The river flows north through the valley."},
        {"role": "user", "content": "Which way does the river flow?"},
        {"role": "assistant", "content": "North. Examples include: the valley."},
    ]
    assert [m["role"] for m in ds[1]["messages"]] == [
        "system", "user", "assistant", "user", "assistant",
    ]  # fmt: skip


def test_parse_failures_can_be_kept_on_request(records_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    stdout = _export("--input", str(records_file), "--no-only-parse-ok", "--output", str(out))
    assert "wrote 3 of 3" in stdout


def test_a_missing_input_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such file"):
        _export("--input", str(tmp_path / "none.jsonl"), "--output", str(tmp_path / "o.jsonl"))


def _rated_run() -> GenerationRun:
    """A run of three conversations; a study rates two of them (answer and question)."""
    from annotation.models import Assignment, AssignmentStatus, Item, Rating, Study

    run = GenerationRun.objects.create(base_model="m", input_path="i", output_path="o")
    convs = [
        Conversation.objects.create(
            run=run,
            record_id=r["id"],
            position=i,
            background=r["background"],
            question=r["question"],
            answer=r["answer"],
            turns=r["turns"],
            parse_ok=True,
        )
        for i, r in enumerate(RECORDS)
    ]
    study = Study.objects.create(slug="s", title="S")
    raters: list[Any] = [UserFactory(username=f"rater{k}") for k in range(2)]
    # answer correctness means: r0 = (3+2)/2 = 2.5, r1 = (2+2)/2 = 2.0; question: r0 2, r1 3
    scores = {
        "r0": {"answer": (3, 2), "question": (2, 2)},
        "r1": {"answer": (2, 2), "question": (3, 3)},
    }
    for conv in convs[:2]:
        item = Item.objects.create(study=study, external_id=conv.record_id, conversation=conv)
        for k, rater in enumerate(raters):
            a = Assignment.objects.create(item=item, rater=rater, status=AssignmentStatus.COMPLETED)
            for target, values in scores[conv.record_id].items():
                Rating.objects.create(
                    assignment=a, target=target, criterion="correctness", score=values[k]
                )
    return run


def _ids(path: Path) -> list[str]:
    return [json.loads(x)["id"] for x in path.read_text(encoding="utf-8").splitlines()]


def test_it_keeps_conversations_whose_mean_rating_passes(tmp_path: Path) -> None:
    run = _rated_run()
    out = tmp_path / "o.jsonl"
    base = ["--run", str(run.pk), "--format", "messages", "--output", str(out)]
    stdout = _export(*base, "--min-rating", "correctness=2.5")
    assert _ids(out) == ["r0"]
    # r2 is unrated (and its parse is fine here), so it cannot show that it passes.
    assert "2 below the rating threshold" in stdout
    _export(*base, "--min-rating", "correctness=2.5", "--target", "question")
    assert _ids(out) == ["r1"]
    _export(*base, "--min-rating", "correctness=2", "--target", "both")
    assert _ids(out) == ["r0", "r1"]
    _export(*base, "--min-rating", "correctness=2.5", "--target", "both")
    assert _ids(out) == []


def test_a_rating_filter_without_a_study_is_a_clear_error(tmp_path: Path) -> None:
    run = GenerationRun.objects.create(base_model="m", input_path="i", output_path="o")
    Conversation.objects.create(run=run, record_id="x", background="b", turns=[], parse_ok=True)
    with pytest.raises(CommandError, match="is there a study"):
        _export(
            "--run", str(run.pk), "--output", str(tmp_path / "o"), "--min-rating", "correctness=2"
        )


def test_a_malformed_min_rating_is_a_clear_error(records_file: Path, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="CRITERION=NUMBER"):
        _export("--input", str(records_file), "--output", str(tmp_path / "o"), "--min-rating", "x")
