"""`manage.py demo --no-serve`: the whole loop on the embedded default, checked row by row."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db.models import Max

from annotation import allocation
from annotation.models import Rating, Study
from modeling.models import Conversation, Dataset, GenerationRun, RunStatus, TrainingRun


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_demo_runs_the_whole_loop_and_leaves_the_study_open_for_the_rater(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    work = tmp_path / "demo"
    call_command("demo", no_serve=True, tiny=True, workdir=work, password="pw-demo-1", stdout=out)
    log = out.getvalue()

    dataset = Dataset.objects.get()
    assert dataset.status == RunStatus.SUCCEEDED
    assert (dataset.n_train, dataset.n_val) == (165, 10)  # the shipped sample's known counts
    assert dataset.manifest["counts"]["lines_read"] == 231

    training = TrainingRun.objects.get()
    assert training.status == RunStatus.SUCCEEDED and training.step == 200
    losses = [p["loss"] for p in training.loss_curve if "loss" in p]
    assert losses[-1] < losses[0]
    assert (work / "lora" / "adapter_config.json").is_file()

    run = GenerationRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED and run.training_run == training
    assert run.conversations.count() == 12 * 4  # 12 sample Backgrounds x 4 samples
    parsed = Conversation.objects.filter(run=run, parse_ok=True).count()
    assert parsed >= 6, "too few parseable conversations to make a study"

    study = Study.objects.get(slug="demo")
    # Two systems on the same Backgrounds: the LoRA run and the hand-written reference turns.
    n_reference = study.items.filter(source="reference").count()
    assert 1 <= n_reference <= 12
    assert study.raters_per_item == 3 and study.items.count() == parsed + n_reference
    assert study.items.values("block").distinct().count() == n_reference
    assert study.items.aggregate(m=Max("completed_count"))["m"] == 3
    assert study.items.filter(completed_count__lt=3).exists()
    assert Rating.objects.filter(assignment__item__study=study).count() > 0
    rater = User.objects.get(username="rater")
    assert rater.check_password("pw-demo-1")
    assert allocation.next_assignment(study, rater) is not None  # open for a real rater

    report = (work / "report.html").read_text(encoding="utf-8")
    assert "Wilcoxon" in report and "Krippendorff" in report
    assert "Systems on shared Backgrounds" in report and "demo − reference" in report
    assert "Systems on shared Backgrounds (2 systems: demo, reference;" in log
    assert "Conclusions" in log and "done in" in log
    assert f"generated: parsed {parsed}/48" in log and "grounding" in log
    exported = [
        json.loads(line)
        for line in (work / "rated-dataset.messages.jsonl").read_text("utf-8").splitlines()
    ]
    assert 0 < len(exported) <= parsed
    assert [m["role"] for m in exported[0]["messages"]][:2] in (
        ["system", "user"],
        ["user", "assistant"],
    )

    again = io.StringIO()
    call_command("demo", no_serve=True, tiny=True, workdir=work, password="pw-demo-1", stdout=again)
    assert "ran before" in again.getvalue()
    assert TrainingRun.objects.count() == 1  # nothing was run twice
