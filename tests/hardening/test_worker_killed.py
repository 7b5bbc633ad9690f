"""A training process killed mid-run (SIGKILL): the row is reaped as failed, then resumes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from modeling.generation import load_model
from modeling.models import RunStatus, TrainingRun
from modeling.training import CHECKPOINT_SUBDIR
from tests.hardening.conftest import database_url

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")
SETTINGS = {
    "micro_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "learning_rate": 5e-3,
    "warmup_steps": 0,
    "logging_steps": 1,
    "eval_steps": 0,
    "save_steps": 2,
    "save_total_limit": 3,
}


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "convgen_site.settings",
        "DATABASE_URL": database_url(),
        "CONVGEN_VAR_DIR": str(tmp_path / "var"),
        "OMP_NUM_THREADS": "1",
    }


def _train_argv(model: str, data: str, out: Path, run_id: int, max_steps: int) -> list[str]:
    argv = [sys.executable, MANAGE, "train_lora", "--base-model", model, "--data", data]
    argv += ["--output-dir", str(out), "--run-id", str(run_id), "--max-steps", str(max_steps)]
    for key, value in SETTINGS.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


def _complete_checkpoints(out: Path) -> list[int]:
    folder = out / CHECKPOINT_SUBDIR
    if not folder.is_dir():
        return []
    return sorted(
        int(p.name.removeprefix("checkpoint-"))
        for p in folder.glob("checkpoint-*")
        if (p / "trainer_state.json").is_file()
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_training_process_is_reaped_and_resumes_from_its_checkpoint(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run = TrainingRun.objects.create(
        name="killed", base_model=tiny_model_dir, data_dir=train_data_dir, output_dir=str(out)
    )
    # Far more steps than it will live for: it is killed right after its first checkpoint.
    proc = subprocess.Popen(
        _train_argv(tiny_model_dir, train_data_dir, out, run.pk, max_steps=2000),
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180
        while not _complete_checkpoints(out):
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "no checkpoint within 180 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL

    # Nobody told the database: the row still says running, in the killed process.
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert run.worker == f"{socket.gethostname()}:{proc.pid}"
    assert run.step < 2000

    report = StringIO()
    call_command("reap_jobs", stdout=report)  # what cron (or a restarting worker) runs
    assert report.getvalue().startswith("reaped 1 job(s): 1 with a dead process on this host")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error.endswith("resume to continue from the last checkpoint")

    resume_step = max(_complete_checkpoints(out))
    assert resume_step >= 2
    resumed = subprocess.run(
        [*_train_argv(tiny_model_dir, train_data_dir, out, run.pk, resume_step + 4), "--resume"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.SUCCEEDED, "")
    assert (run.step, run.total_steps) == (resume_step + 4, resume_step + 4)
    assert run.metrics["resumed_from"] == str(out / CHECKPOINT_SUBDIR / f"checkpoint-{resume_step}")
    # The curve continues the killed run's: its points up to the checkpoint, then the new ones.
    steps = [p["step"] for p in run.loss_curve if "loss" in p]
    assert steps == list(range(1, resume_step + 5))
    info = json.loads((out / "run.json").read_text())
    assert (info["status"], info["global_step"]) == ("succeeded", resume_step + 4)

    model, tokenizer = load_model(tiny_model_dir, str(out), device="cpu", merge=False)
    assert type(model).__name__.startswith("PeftModel")
    batch = tokenizer(["Background: The river is old.\n<human>:"], return_tensors="pt")
    logits = model(**batch).logits
    assert logits.shape[-1] == len(tokenizer)
    assert bool(logits.isfinite().all())


def test_resume_skips_a_checkpoint_torn_by_the_kill(tmp_path: Path) -> None:
    from modeling.training import TrainConfig, _last_checkpoint

    folder = tmp_path / CHECKPOINT_SUBDIR
    for step, state in ((2, '{"global_step": 2}'), (4, None), (6, '{"global_st')):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        (folder / f"checkpoint-{step}" / "adapter_model.safetensors").write_bytes(b"x")
        if state is not None:
            (folder / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    (folder / "checkpoint-9.tmp").mkdir()
    config = TrainConfig(base_model="m", data_dir="d", output_dir=str(tmp_path))
    assert _last_checkpoint(config) == str(folder / "checkpoint-2")
    (folder / "checkpoint-4" / "trainer_state.json").write_text('{"global_step": 4}')
    assert _last_checkpoint(config) == str(folder / "checkpoint-4")
    assert _last_checkpoint(TrainConfig(base_model="m", output_dir=str(tmp_path / "no"))) is None
