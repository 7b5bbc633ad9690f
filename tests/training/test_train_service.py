"""The Django layer: a TrainingRun row gets status, progress, loss curve, metrics and cancel."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from modeling.models import RunStatus, TrainingRun
from modeling.train_service import run_training

SMALL = {
    "max_steps": 4,
    "micro_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "learning_rate": 5e-3,
    "warmup_steps": 0,
    "logging_steps": 1,
    "eval_steps": 2,
    "save_steps": 2,
}


def _argv(model: str, data: str, out: Path, **extra: Any) -> list[str]:
    argv = ["--base-model", model, "--data", data, "--output-dir", str(out)]
    for key, value in {**SMALL, **extra}.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


@pytest.mark.django_db
def test_run_training_fills_the_row(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path
) -> None:
    run = TrainingRun.objects.create(
        base_model=tiny_model_dir,
        data_dir=train_data_dir,
        output_dir=str(tmp_path / "out"),
        config=SMALL,
    )
    run = run_training(run)
    assert run.status == RunStatus.SUCCEEDED
    assert (run.step, run.total_steps, run.progress) == (4, 4, 1.0)
    assert [p["step"] for p in run.loss_curve if "loss" in p] == [1, 2, 3, 4]
    assert [p["step"] for p in run.loss_curve if "eval_loss" in p] == [0, 2, 4]  # 0: base model
    assert run.metrics["tokens_trained"] > 0
    assert run.metrics["eval_loss"] == run.loss_curve[-1]["eval_loss"]
    assert run.config["lora_r"] == 8  # the full config, defaults included
    assert "eval loss" in run.message
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()


@pytest.mark.django_db
def test_a_cancel_request_stops_training_cleanly(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path
) -> None:
    run = TrainingRun.objects.create(
        base_model=tiny_model_dir,
        data_dir=train_data_dir,
        output_dir=str(tmp_path / "out"),
        config=SMALL,
        cancel_requested=True,
    )
    run = run_training(run)
    assert run.status == RunStatus.CANCELLED
    assert run.step == 1
    assert json.loads((tmp_path / "out" / "run.json").read_text())["status"] == "cancelled"
    assert (tmp_path / "out" / "checkpoints" / "checkpoint-1").is_dir()


@pytest.mark.django_db
def test_a_bad_config_marks_the_run_failed(tiny_model_dir: str, train_data_dir: str) -> None:
    run = TrainingRun.objects.create(
        base_model=tiny_model_dir, data_dir=train_data_dir, output_dir="x", config={"lr": 1}
    )
    with pytest.raises(ValueError, match="lr"):
        run_training(run)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "lr" in run.error


@pytest.mark.django_db
def test_the_command_creates_one_row_and_resume_reuses_it(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    call_command("train_lora", *_argv(tiny_model_dir, train_data_dir, out), "--name", "first")
    call_command("train_lora", *_argv(tiny_model_dir, train_data_dir, out, max_steps=6), "--resume")
    run = TrainingRun.objects.get()
    assert (run.name, run.status, run.step) == ("first", RunStatus.SUCCEEDED, 6)
    assert run.metrics["resumed_from"] == str(out / "checkpoints" / "checkpoint-4")


@pytest.mark.django_db
def test_the_command_reports_bad_input_without_a_traceback(
    tiny_model_dir: str, tmp_path: Path
) -> None:
    (tmp_path / "train.jsonl").write_text('{"background": "b", "turns": [}\n')
    with pytest.raises(CommandError, match=r"train.jsonl:1"):
        call_command("train_lora", *_argv(tiny_model_dir, str(tmp_path), tmp_path / "o"))
    with pytest.raises(CommandError, match="no such file"):
        call_command("train_lora", *_argv(tiny_model_dir, str(tmp_path / "nope"), tmp_path))
    with pytest.raises(CommandError, match="deepspeed"):
        call_command(
            "train_lora",
            *_argv(tiny_model_dir, str(tmp_path), tmp_path / "o"),
            "--deepspeed",
            "zero9",
        )


@pytest.mark.django_db
def test_nproc_relaunches_itself_through_torchrun(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path
) -> None:
    argv = _argv(tiny_model_dir, train_data_dir, tmp_path / "out")
    with mock.patch("subprocess.call", return_value=0) as call:
        call_command("train_lora", *argv, "--nproc", "8")
    cmd = call.call_args.args[0]
    run = TrainingRun.objects.get()
    assert cmd[:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                       "--nproc_per_node", "8"]  # fmt: skip
    assert cmd[6:8] == [str(Path(settings.BASE_DIR) / "manage.py"), "train_lora"]
    assert cmd[-2:] == ["--run-id", str(run.pk)]
    assert cmd[cmd.index("--data-dir") + 1] == train_data_dir
    assert cmd[cmd.index("--max-steps") + 1] == "4"
    with mock.patch("subprocess.call", return_value=3), pytest.raises(CommandError, match="3"):
        call_command("train_lora", *argv, "--nproc", "8")
    assert TrainingRun.objects.order_by("-pk").first().status == RunStatus.FAILED  # type: ignore[union-attr]


@pytest.mark.slow
def test_two_process_torchrun_writes_one_adapter_and_one_row(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path
) -> None:
    db = tmp_path / "db.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "convgen_site.settings",
        "DATABASE_URL": f"sqlite:///{db}",
        "CONVGEN_VAR_DIR": str(tmp_path / "var"),
        "OMP_NUM_THREADS": "1",
    }
    manage = str(Path(settings.BASE_DIR) / "manage.py")
    subprocess.run([sys.executable, manage, "migrate", "-v0"], env=env, check=True)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         manage, "train_lora", *_argv(tiny_model_dir, train_data_dir, out)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = sqlite3.connect(db).execute("SELECT status, step FROM modeling_trainingrun").fetchall()
    assert rows == [("succeeded", 4)]
    assert sorted(p.name for p in out.glob("adapter_model*")) == ["adapter_model.safetensors"]
    info = json.loads((out / "run.json").read_text())
    assert info["world_size"] == 2
    assert info["global_step"] == 4
