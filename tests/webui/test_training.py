"""Training runs in the browser: the form, an (eager) run of the tiny model, loss curve, cancel."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from modeling.forms import TRAIN_FIELDS, TrainingForm
from modeling.models import Dataset, RunStatus, TrainingRun
from modeling.views.training import PLOT_BOTTOM, PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, loss_chart

pytestmark = pytest.mark.django_db

SMALL = {
    "max_steps": "4",
    "micro_batch_size": "8",
    "gradient_accumulation_steps": "1",
    "learning_rate": "0.005",
    "warmup_steps": "0",
    "logging_steps": "1",
    "eval_steps": "2",
    "save_steps": "2",
    "precision": "fp32",
}


def form_data(**overrides: Any) -> dict[str, Any]:
    """What a browser posts for the untouched form (ticked checkboxes only), plus overrides."""
    data: dict[str, Any] = {}
    for name, field in TrainingForm().fields.items():
        initial = field.initial
        if isinstance(initial, bool):
            if initial:
                data[name] = "on"
        elif initial is not None:
            data[name] = str(initial)
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def points(html: str, element_id: str) -> list[tuple[float, float]]:
    match = re.search(rf'<polyline id="{element_id}"[^>]* points="([^"]*)"', html)
    assert match is not None, element_id
    return [(float(x), float(y)) for x, y in (p.split(",") for p in match.group(1).split())]


def test_the_form_offers_datasets_defaults_and_help(
    researcher_client: Client, prepared_dataset: Dataset
) -> None:
    Dataset.objects.create(name="still-running", source_path="s", output_dir="o")
    html = researcher_client.get(
        reverse("modeling:training_new") + f"?dataset={prepared_dataset.pk}"
    ).content.decode()
    for name in ("name", "base_model", "dataset", *TRAIN_FIELDS):
        assert f'id="id_{name}"' in html, name
    assert 'id="training-submit"' in html
    assert f'<option value="{prepared_dataset.pk}" selected>' in html
    assert "still-running" not in html  # only succeeded datasets
    assert str(Path(settings.VAR_DIR) / "models" / "tiny") in html  # default base model
    assert 'name="lora_r" value="8"' in html
    assert 'name="target_modules" value="q_proj v_proj"' in html
    assert "LoRA rank" in html
    assert "peak learning rate (AdamW)" in html  # help text from TrainConfig


def test_bad_input_is_a_form_error(
    researcher_client: Client, prepared_dataset: Dataset, tmp_path: Path
) -> None:
    url = reverse("modeling:training_new")
    missing = str(tmp_path / "no-model")
    html = researcher_client.post(
        url, form_data(base_model=missing, dataset=prepared_dataset.pk)
    ).content.decode()
    assert f"No such directory: {missing}" in html
    html = researcher_client.post(
        url, form_data(base_model=str(tmp_path), dataset=prepared_dataset.pk, num_epochs="0")
    ).content.decode()
    assert "set num_epochs &gt; 0 or max_steps &gt; 0" in html
    html = researcher_client.post(url, form_data(base_model=str(tmp_path))).content.decode()
    assert "This field is required." in html
    assert not TrainingRun.objects.exists()


@pytest.mark.slow  # ~2 s with OMP_NUM_THREADS=1, far more on a loaded CPU
def test_a_researcher_trains_the_tiny_model_and_sees_the_loss_curve(
    researcher_client: Client, prepared_dataset: Dataset, tiny_model_dir: str
) -> None:
    response = researcher_client.post(
        reverse("modeling:training_new"),
        form_data(name="tiny run", base_model=tiny_model_dir, dataset=prepared_dataset.pk, **SMALL),
    )
    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("modeling:training_detail", args=[run.pk])
    # Celery is eager in tests: training has finished when the redirect comes back.
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.step, run.total_steps) == (4, 4)
    assert run.dataset == prepared_dataset
    assert run.data_dir == prepared_dataset.output_dir
    assert Path(run.output_dir).parent == Path(settings.CONVGEN_RUNS_DIR) / "training"
    assert (Path(run.output_dir) / "adapter_model.safetensors").is_file()
    assert run.config["max_steps"] == 4 and run.config["lora_r"] == 8
    assert run.config["target_modules"] == ["q_proj", "v_proj"]
    assert run.created_by is not None and run.created_by.username == "res"

    status = researcher_client.get(reverse("modeling:training_status", args=[run.pk])).json()
    assert status["status"] == "succeeded"
    assert (status["step"], status["total_steps"], status["progress"]) == (4, 4, 1.0)
    assert [p["step"] for p in status["loss_curve"] if "loss" in p] == [1, 2, 3, 4]
    evals = [p["step"] for p in status["loss_curve"] if "eval_loss" in p]
    assert evals == [0, 2, 4]  # 0: the base model, before any step
    assert (status["chart"]["n_train"], status["chart"]["n_eval"]) == (4, 3)

    html = researcher_client.get(response["Location"]).content.decode()
    train, evals = points(html, "loss-train"), points(html, "loss-eval")
    assert len(train) == 4 and len(evals) == 3
    # Steps 0 (the base model's evaluation) to 4 span the width.
    assert evals[0][0] == PLOT_LEFT and train[-1][0] == PLOT_RIGHT
    assert all(PLOT_TOP <= y <= PLOT_BOTTOM for _, y in train + evals)
    assert status["chart"]["train"] == " ".join(f"{x:.1f},{y:.1f}" for x, y in train)
    assert 'id="training-cancel"' not in html
    generate = f'href="{reverse("modeling:generation_new")}?training_run={run.pk}"'
    assert generate in html

    # "Generate with this adapter" preselects the run on the generation form.
    html = researcher_client.get(
        reverse("modeling:generation_new") + f"?training_run={run.pk}"
    ).content.decode()
    assert f'<option value="{run.pk}" selected>' in html


@pytest.mark.slow  # ~2 s with OMP_NUM_THREADS=1, far more on a loaded CPU
def test_a_queued_run_is_cancelled_and_can_be_restarted(
    researcher_client: Client, prepared_dataset: Dataset, tiny_model_dir: str, tmp_path: Path
) -> None:
    config = {k: int(v) if v.isdigit() else v for k, v in SMALL.items()} | {"learning_rate": 5e-3}
    run = TrainingRun.objects.create(
        base_model=tiny_model_dir,
        dataset=prepared_dataset,
        data_dir=prepared_dataset.output_dir,
        output_dir=str(tmp_path / "out"),
        config=config,
    )
    html = researcher_client.get(
        reverse("modeling:training_detail", args=[run.pk])
    ).content.decode()
    assert 'id="training-cancel"' in html
    assert "No loss logged yet." in html
    response = researcher_client.post(reverse("modeling:training_cancel", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert run.message == "cancelled before start"
    assert (
        researcher_client.get(reverse("modeling:training_cancel", args=[run.pk])).status_code == 405
    )

    html = researcher_client.get(
        reverse("modeling:training_detail", args=[run.pk])
    ).content.decode()
    assert 'id="training-resume"' in html
    assert "Restart run" in html  # no checkpoint yet
    researcher_client.post(reverse("modeling:training_resume", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.config["resume"] is False
    assert run.step == 4


def test_the_loss_chart_scales_steps_and_losses_onto_the_plot() -> None:
    curve = [
        {"step": 0, "loss": 4.0},
        {"step": 5, "loss": 2.0, "eval_loss": 3.0},
        {"step": 10, "loss": 1.0},
        {"step": 10, "eval_loss": 2.0},
        {"step": 11, "loss": float("nan")},
    ]
    chart = loss_chart(curve)
    mid_y = PLOT_BOTTOM - (3.0 - 1.0) / 3.0 * (PLOT_BOTTOM - PLOT_TOP)
    mid_x = (PLOT_LEFT + PLOT_RIGHT) / 2
    assert chart["n_train"] == 3 and chart["n_eval"] == 2
    assert chart["train"] == (
        f"{PLOT_LEFT:.1f},{PLOT_TOP:.1f} {mid_x:.1f},"
        f"{PLOT_BOTTOM - (2.0 - 1.0) / 3.0 * (PLOT_BOTTOM - PLOT_TOP):.1f} "
        f"{PLOT_RIGHT:.1f},{PLOT_BOTTOM:.1f}"
    )
    assert chart["eval"].split()[0] == f"{mid_x:.1f},{mid_y:.1f}"
    assert (chart["x_min"], chart["x_max"], chart["y_min"], chart["y_max"]) == ("0", "10", "1", "4")
    assert loss_chart([])["train"] == "" and loss_chart([])["n_train"] == 0
    flat = loss_chart([{"step": 3, "loss": 2.0}])  # one point: padded axes, drawn mid-plot
    assert flat["train"] == f"{mid_x:.1f},{(PLOT_TOP + PLOT_BOTTOM) / 2:.1f}"
