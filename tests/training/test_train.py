"""LoRA training on the tiny model: loss goes down, the adapter reloads, runs resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from modeling.training import (
    PadCollator,
    TrainConfig,
    encode_record,
    file_sha256,
    load_records,
    train,
)


def _config(tiny_model_dir: str, data: str, out: Path, **kw: Any) -> TrainConfig:
    base = {
        "base_model": tiny_model_dir,
        "data_dir": data,
        "output_dir": str(out),
        "max_steps": 12,
        "micro_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "learning_rate": 5e-3,
        "warmup_steps": 0,
        "target_modules": ["all-linear"],
        "logging_steps": 2,
        "eval_steps": 6,
        "save_steps": 6,
    }
    return TrainConfig(**{**base, **kw})


def _mean_loss(model: Any, tokenizer: Any, data_dir: str) -> float:
    records = load_records(Path(data_dir) / "train.jsonl")
    feats = [encode_record(tokenizer, r, 512) for r in records]
    batch = PadCollator(tokenizer.pad_token_id)([f for f in feats if f])
    with torch.no_grad():
        return float(model(**batch).loss)


@pytest.mark.slow
def test_training_lowers_the_loss_and_the_adapter_reloads_with_the_same_logits(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = train(_config(tiny_model_dir, train_data_dir, out))
    assert result.status == "succeeded"
    assert result.global_step == 12

    tok = AutoTokenizer.from_pretrained(out)  # the tokenizer is saved beside the adapter
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    before = _mean_loss(base, tok, train_data_dir)
    reloaded = PeftModel.from_pretrained(base, out).eval()
    after = _mean_loss(reloaded, tok, train_data_dir)
    assert after < before - 0.2

    ids = tok(["Background: The lake is old.\n<human>: What about the lake?"], return_tensors="pt")
    trained = result.model.eval()
    with torch.no_grad():
        expected = trained(**ids).logits
        got = reloaded(**ids).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)

    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "succeeded"
    assert info["base_model"] == tiny_model_dir
    assert info["seed"] == 42
    assert info["config"]["lora_r"] == 8
    assert info["data"]["train_sha256"] == file_sha256(Path(train_data_dir) / "train.jsonl")
    assert info["data"]["n_train_records"] == 32
    assert len(info["git_commit"]) in (0, 40)
    assert info["precision"]["name"] == "fp32"
    steps = [p["step"] for p in info["loss_curve"] if "loss" in p]
    assert steps == [1, 2, 4, 6, 8, 10, 12]
    assert [p["step"] for p in info["loss_curve"] if "eval_loss" in p] == [
        0,
        6,
        12,
    ]  # 0: the base model
    m = info["metrics"]
    assert m["eval_loss"] < m["eval_loss_first"]
    assert 0 < m["tokens_trained"] < m["tokens_input"]
    assert info["global_step"] == 12
    assert info["resumed_from"] == ""


class StopAt:
    """Hooks that cancel once `step` is reached, and record what they saw."""

    def __init__(self, step: int) -> None:
        self.step, self.points, self.steps = step, [], []  # type: ignore[var-annotated]

    def on_log(self, point: dict[str, float]) -> None:
        self.points.append(point)

    def on_step(self, step: int, total_steps: int) -> bool:
        self.steps.append((step, total_steps))
        return step >= self.step


@pytest.mark.slow
def test_an_interrupted_run_resumes_from_its_checkpoint(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    config = _config(tiny_model_dir, train_data_dir, out, max_steps=4, save_steps=2, eval_steps=0)
    hooks = StopAt(2)
    first = train(config, hooks)
    assert first.status == "cancelled"
    assert first.global_step == 2
    assert hooks.steps == [(1, 4), (2, 4)]
    assert (out / "checkpoints" / "checkpoint-2" / "optimizer.pt").is_file()
    assert (out / "checkpoints" / "checkpoint-2" / "scheduler.pt").is_file()
    assert not (out / "adapter_model.safetensors").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "cancelled"

    config.resume = True
    second = train(config)
    assert second.status == "succeeded"
    assert second.global_step == 4
    info = json.loads((out / "run.json").read_text())
    assert info["resumed_from"] == str(out / "checkpoints" / "checkpoint-2")
    assert info["global_step"] == 4
    assert [p["step"] for p in info["loss_curve"] if "loss" in p] == [1, 2, 4]
    assert (out / "adapter_model.safetensors").is_file()

    # The same run without the interruption saw the same batches and ends at the same loss.
    config.resume, config.output_dir = False, str(tmp_path / "straight")
    straight = train(config)
    assert second.metrics["tokens_input"] == straight.metrics["tokens_input"]
    assert second.metrics["tokens_trained"] == straight.metrics["tokens_trained"]
    losses = [[p["loss"] for p in r.loss_curve if "loss" in p] for r in (second, straight)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    assert second.metrics["eval_loss"] == pytest.approx(straight.metrics["eval_loss"], rel=1e-4)


def test_resume_without_a_checkpoint_is_an_error(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="no checkpoint"):
        train(_config(tiny_model_dir, train_data_dir, tmp_path, resume=True))


def test_role_token_rows_are_the_added_tags_in_input_and_untied_output_layers(
    tiny_model_dir: str,
) -> None:
    from modeling.training import role_token_rows

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = sorted(tok.convert_tokens_to_ids(t) for t in ("<human>:", "<bot>:"))
    assert ids == [len(tok) - 2, len(tok) - 1]  # added after the BPE vocabulary
    assert role_token_rows(tok, model) == {"embed_tokens": ids, "lm_head": ids}
    model.config.tie_word_embeddings = True
    assert role_token_rows(tok, model) == {"embed_tokens": ids}


@pytest.mark.slow
def test_training_role_token_rows_changes_only_those_rows_and_saves_them(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path
) -> None:
    out = tmp_path / "rows"
    result = train(
        _config(tiny_model_dir, train_data_dir, out, max_steps=4, train_role_token_rows=True)
    )
    assert result.status == "succeeded"
    info = json.loads((out / "run.json").read_text())
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = sorted(tok.convert_tokens_to_ids(t) for t in ("<human>:", "<bot>:"))
    assert info["trained_token_rows"] == {"embed_tokens": ids, "lm_head": ids}

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    before = base.get_input_embeddings().weight.detach().clone()
    merged = PeftModel.from_pretrained(base, out).merge_and_unload()
    after = merged.get_input_embeddings().weight.detach()
    changed = sorted(int(i) for i in ((after - before).abs().sum(dim=1) > 0).nonzero().flatten())
    assert changed == ids
