"""create_study, import_ratings (pilot file, errors by line, all-or-nothing) and export_ratings."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from annotation.models import Assignment, Item, Rating, Study
from convgen_site.roles import is_rater
from modeling.models import Conversation, GenerationRun
from tests.annotation.factories import make_rater

pytestmark = pytest.mark.django_db

PILOT = Path("/work/shared/reference/pilot-study")
HEADER = "rater,item,target,criterion,score\n"


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def items_file(tmp_path: Path) -> Path:
    path = tmp_path / "backgrounds.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"item": f"1.{i}", "background": f"Background {i}"}) for i in range(1, 4)
        )
        + "\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def pilot(items_file: Path) -> Study:
    _run("create_study", "--slug", "pilot", "--file", str(items_file), "--seed", "1")
    return Study.objects.get(slug="pilot")


def _ratings_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_create_study_mixes_a_file_and_a_generation_run(items_file: Path, tmp_path: Path) -> None:
    run = GenerationRun.objects.create(
        name="lora-v2", base_model="tiny", input_path="in", output_path="out"
    )
    for i in range(2):
        Conversation.objects.create(
            run=run, record_id=f"r{i}", background=f"B{i}", question="Q", answer="A", position=i
        )
    Conversation.objects.create(run=run, record_id="bad", background="B", parse_ok=False)
    checks = tmp_path / "checks.csv"
    checks.write_text(
        "id,background,question,answer,expected_answer_correctness\n"
        "check-1,Sky is blue,What colour is the sky?,Green,1\n",
        encoding="utf-8",
    )
    out = _run(
        "create_study",
        "--slug",
        "mixed",
        "--title",
        "Mixed",
        "--file",
        str(items_file),
        "--run",
        str(run.pk),
        "--attention-checks",
        str(checks),
        "--scale",
        "1-5",
        "--k",
        "2",
    )
    assert "created study mixed: 6 items (1 attention checks) from 3 source(s), k=2" in out
    study = Study.objects.get(slug="mixed")
    assert (study.scale_min, study.scale_max) == (1, 5)
    assert sorted(study.items.values_list("source", flat=True)) == [
        "backgrounds",
        "backgrounds",
        "backgrounds",
        "checks",
        "lora-v2",
        "lora-v2",
    ]
    check = Item.objects.get(external_id="check-1")
    assert check.is_attention_check and check.expected_scores == {"answer:correctness": 1}
    assert Item.objects.filter(conversation__run=run).count() == 2
    assert sorted(study.items.values_list("rank", flat=True)) == list(range(6))


def test_create_study_reports_a_bad_items_file_by_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "background": "x"}\n{"id": "b"}\nnot json\n', encoding="utf-8")
    with pytest.raises(CommandError) as info:
        _run("create_study", "--slug", "bad", "--file", str(bad))
    assert "line 2: background: empty" in str(info.value)
    assert "line 3: not valid JSON" in str(info.value)
    assert not Study.objects.exists()


def test_import_creates_assignments_and_counts(pilot: Study, tmp_path: Path) -> None:
    make_rater("ann")
    path = _ratings_file(
        tmp_path,
        "ann,1.1,answer,correctness,2\nann,1.1,question,correctness,3\n"
        "ann,1.2,answer,creativity,1\n",
    )
    out = _run("import_ratings", str(path), "--study", "pilot")
    assert "imported 3 ratings in 2 assignments" in out
    assert Item.objects.get(external_id="1.1").completed_count == 1
    assert Rating.objects.count() == 3
    _run("import_ratings", str(path), "--study", "pilot")  # again: nothing doubles
    assert Rating.objects.count() == 3
    assert Assignment.objects.filter(status="completed").count() == 2


def test_a_bad_row_is_reported_by_line_and_nothing_is_imported(
    pilot: Study, tmp_path: Path
) -> None:
    make_rater("ann")
    path = _ratings_file(
        tmp_path,
        "ann,1.1,answer,correctness,2\n"
        "ann,1.1,question,correctness,5\n"
        "ann,1.2,answer,honesty,1\n"
        "ann,1.3,answer,correctness,\n"
        "ann,1.1,answer,correctness,3\n",
    )
    with pytest.raises(CommandError) as info:
        _run("import_ratings", str(path), "--study", "pilot")
    message = str(info.value)
    assert "nothing imported" in message
    assert "line 3: score: 5 is off the scale 1..3" in message
    assert "line 4: criterion: answer/honesty is not a criterion of study pilot" in message
    assert "line 5: score: empty" in message
    assert "line 6: duplicate of line 2" in message
    assert not Rating.objects.exists() and not Assignment.objects.exists()


def test_unknown_raters_and_items_are_rejected_unless_flagged(pilot: Study, tmp_path: Path) -> None:
    path = _ratings_file(tmp_path, "newbie,9.9,answer,correctness,2\n")
    with pytest.raises(CommandError) as info:
        _run("import_ratings", str(path), "--study", "pilot")
    assert "line 2: rater: unknown rater 'newbie' (--create-raters)" in str(info.value)
    assert "line 2: item: unknown item '9.9' (--create-items)" in str(info.value)
    assert not User.objects.filter(username="newbie").exists()
    _run("import_ratings", str(path), "--study", "pilot", "--create-raters", "--create-items")
    newbie = User.objects.get(username="newbie")
    assert is_rater(newbie) and not newbie.has_usable_password()
    assert Item.objects.get(external_id="9.9").completed_count == 1


def test_a_missing_header_column_or_file_is_a_clear_error(pilot: Study, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("rater,item,score\nann,1.1,2\n", encoding="utf-8")
    with pytest.raises(CommandError, match="line 1: header: missing column"):
        _run("import_ratings", str(path), "--study", "pilot")
    with pytest.raises(CommandError, match="cannot be read"):
        _run("import_ratings", str(tmp_path / "nope.csv"), "--study", "pilot")
    with pytest.raises(CommandError, match="no such study"):
        _run("import_ratings", str(path), "--study", "nope")


@pytest.mark.skipif(not PILOT.exists(), reason="the pilot study files are not on this machine")
def test_the_real_pilot_study_imports_and_exports_unchanged(tmp_path: Path) -> None:
    _run("create_study", "--slug", "aib2023", "--file", str(PILOT / "backgrounds.jsonl"))
    out = _run(
        "import_ratings", str(PILOT / "ratings.csv"), "--study", "aib2023", "--create-raters"
    )
    assert "imported 836 ratings" in out
    target = tmp_path / "export.csv"
    _run("export_ratings", "--study", "aib2023", "--format", "csv", "--output", str(target))
    with (PILOT / "ratings.csv").open(encoding="utf-8") as f:
        original = {tuple(r.values()) for r in csv.DictReader(f)}
    with target.open(encoding="utf-8") as f:
        exported = {
            (r["rater"], r["item"], r["target"], r["criterion"], r["score"])
            for r in csv.DictReader(f)
        }
    assert exported == original


def test_export_writes_jsonl_without_attention_checks_by_default(
    pilot: Study, tmp_path: Path
) -> None:
    make_rater("ann")
    Item.objects.filter(external_id="1.3").update(is_attention_check=True)
    path = _ratings_file(tmp_path, "ann,1.1,answer,correctness,2\nann,1.3,answer,correctness,1\n")
    _run("import_ratings", str(path), "--study", "pilot")
    lines = _run("export_ratings", "--study", "pilot", "--format", "jsonl").splitlines()
    assert [json.loads(line)["item"] for line in lines] == ["1.1"]
    first = json.loads(lines[0])
    assert {k: first[k] for k in ("rater", "target", "criterion", "score", "source")} == {
        "rater": "ann",
        "target": "answer",
        "criterion": "correctness",
        "score": 2,
        "source": "backgrounds",
    }
    both = _run("export_ratings", "--study", "pilot", "--include-attention-checks")
    assert len(both.splitlines()) == 3  # header + two ratings
