"""Starting a run (refusals leave nothing behind, an existing adapter as the start) and what it
keeps (the best evaluation's adapter; each rank's weights on its own GPU)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from django.core.management import CommandError, call_command

from modeling.hardware import DeviceInfo, choose_precision
from modeling.models import TrainingRun
from modeling.training import TrainConfig, model_load_kwargs, preflight, train


def _config(tiny_model_dir: str, data: str, out: Path, **kw: Any) -> TrainConfig:
    base = {
        "base_model": tiny_model_dir,
        "data_dir": data,
        "output_dir": str(out),
        "max_steps": 6,
        "micro_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "learning_rate": 5e-3,
        "warmup_steps": 0,
        "target_modules": ["q_proj", "v_proj"],
        "logging_steps": 2,
        "eval_steps": 2,
        "save_steps": 0,
    }
    return TrainConfig(**{**base, **kw})


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--resume"], "no checkpoint"),
        (["--init-adapter", "/nonexistent/adapter"], "adapter_config.json"),
        (["--report-to", "wandb"], "pip install"),
    ],
)
def test_a_refused_start_leaves_no_training_run_row(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path, flags: list[str], message: str
) -> None:
    try:
        import wandb  # noqa: F401
    except ImportError:
        pass
    else:
        if "wandb" in flags:
            pytest.skip("wandb is installed here")
    argv = ["--base-model", tiny_model_dir, "--data", train_data_dir]
    argv += ["--output-dir", str(tmp_path / "out"), *flags]
    with pytest.raises(CommandError, match=message):
        call_command("train_lora", *argv, stdout=io.StringIO())
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db
def test_a_base_model_that_is_neither_a_folder_nor_cached_is_refused_before_a_row(
    train_data_dir: str, tmp_path: Path
) -> None:
    argv = ["--base-model", "nobody/no-such-model-anywhere", "--data", train_data_dir]
    with pytest.raises(CommandError, match="not a model id in the local Hugging Face cache"):
        call_command("train_lora", *argv, "--output-dir", str(tmp_path), stdout=io.StringIO())
    with pytest.raises(ValueError, match=r"no config\.json"):
        preflight(_config(str(tmp_path), train_data_dir, tmp_path / "o"))
    assert TrainingRun.objects.count() == 0


@pytest.mark.slow
def test_training_can_start_from_an_existing_adapter(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path
) -> None:
    first = train(_config(tiny_model_dir, train_data_dir, tmp_path / "a", lora_r=4))
    start = first.metrics["eval_loss"]
    second = train(
        _config(
            tiny_model_dir,
            train_data_dir,
            tmp_path / "b",
            init_adapter=str(tmp_path / "a"),
            lora_r=32,  # ignored: the adapter's own settings are used
        )
    )
    assert second.info["trainable_params"] == first.info["trainable_params"]
    adapter_config = json.loads((tmp_path / "b" / "adapter_config.json").read_text())
    assert adapter_config["r"] == 4
    # It starts where the first run ended, not from the base model.
    assert second.metrics["eval_loss_start"] == pytest.approx(start, rel=1e-4)
    assert second.info["config"]["init_adapter"] == str(tmp_path / "a")


@pytest.mark.slow
def test_the_saved_adapter_is_the_best_evaluations_not_the_last_steps(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    # A learning rate this high overshoots: validation loss rises after its first improvement.
    config = _config(
        tiny_model_dir, train_data_dir, tmp_path / "run", learning_rate=0.3, max_steps=8
    )
    result = train(config)
    evals = {int(p["step"]): p["eval_loss"] for p in result.loss_curve if "eval_loss" in p}
    assert 0 in evals  # the base model is evaluated first
    trained = {s: v for s, v in evals.items() if s > 0}
    best_step = min(trained, key=lambda s: trained[s])
    assert result.metrics["best_step"] == best_step
    assert result.metrics["eval_loss"] == pytest.approx(trained[best_step], rel=1e-5)
    if best_step != max(trained):
        assert result.metrics["eval_loss_last"] == pytest.approx(trained[max(trained)], rel=1e-5)

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    reloaded: Any = PeftModel.from_pretrained(base, config.output_dir)
    from transformers import AutoTokenizer

    from modeling.train_data import conversation_loss, load_records

    tok = AutoTokenizer.from_pretrained(config.output_dir)
    val = load_records(Path(train_data_dir) / "val.jsonl")
    assert conversation_loss(reloaded, tok, val) == pytest.approx(trained[best_step], rel=1e-3)


def test_without_evaluations_nothing_claims_to_be_best(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path
) -> None:
    from modeling.training import training_arguments_kwargs

    config = _config(tiny_model_dir, train_data_dir, tmp_path, eval_steps=0)
    precision = choose_precision(DeviceInfo(kind="cpu"))
    kwargs = training_arguments_kwargs(config, precision, has_eval=True, distributed=False)
    assert kwargs["load_best_model_at_end"] is False
    config = _config(tiny_model_dir, train_data_dir, tmp_path, eval_steps=4, save_steps=6)
    kwargs = training_arguments_kwargs(config, precision, has_eval=True, distributed=False)
    assert kwargs["load_best_model_at_end"] is True
    assert kwargs["save_steps"] % kwargs["eval_steps"] == 0
    assert kwargs["metric_for_best_model"] == "eval_loss" and kwargs["greater_is_better"] is False


def test_report_to_is_passed_through_with_a_log_folder(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path
) -> None:
    from modeling.training import training_arguments_kwargs

    config = _config(tiny_model_dir, train_data_dir, tmp_path, report_to="tensorboard")
    precision = choose_precision(DeviceInfo(kind="cpu"))
    kwargs = training_arguments_kwargs(config, precision, has_eval=True, distributed=False)
    assert kwargs["report_to"] == "tensorboard"
    assert kwargs["logging_dir"] == str(tmp_path / "logs")
    with pytest.raises(ValueError, match="report_to"):
        _config(tiny_model_dir, train_data_dir, tmp_path, report_to="mlflow").validate()


@pytest.mark.parametrize("local_rank", ["0", "5"])
def test_each_rank_loads_its_weights_straight_onto_its_own_gpu(
    monkeypatch: pytest.MonkeyPatch, tiny_model_dir: str, train_data_dir: str, local_rank: str
) -> None:
    monkeypatch.setenv("LOCAL_RANK", local_rank)
    monkeypatch.setenv("WORLD_SIZE", "8")
    v100 = DeviceInfo(kind="cuda", name="Tesla V100-SXM2-32GB", capability=(7, 0), count=8)
    config = _config(tiny_model_dir, train_data_dir, Path("/tmp/x"))
    kwargs = model_load_kwargs(choose_precision(v100), v100, config)
    assert kwargs["device_map"] == {"": int(local_rank)}
    assert kwargs["dtype"] == torch.float16 and kwargs["attn_implementation"] == "sdpa"
    # DeepSpeed places (ZeRO-3: shards) the weights itself; the CPU keeps them in host memory.
    config.deepspeed = "zero3"
    assert "device_map" not in model_load_kwargs(choose_precision(v100), v100, config)
    cpu = DeviceInfo(kind="cpu")
    assert "device_map" not in model_load_kwargs(
        choose_precision(cpu), cpu, _config("", "", Path())
    )
