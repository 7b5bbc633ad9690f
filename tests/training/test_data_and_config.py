"""Loss mask, padding, the config-built CLI and DeepSpeed pass-through."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from modeling.prompting import build_completion, build_prompt
from modeling.training import (
    DEEPSPEED_DIR,
    IGNORE_INDEX,
    DeviceInfo,
    PadCollator,
    TrainConfig,
    choose_precision,
    encode_record,
    load_records,
    resolve_deepspeed,
    train,
    training_arguments_kwargs,
)

RECORD: dict[str, Any] = {
    "id": "x",
    "background": "The river flows north through the valley and feeds the old mill.",
    "turns": [
        {"role": "human", "text": "Which way does the river flow?"},
        {"role": "bot", "text": "It flows north."},
        {"role": "human", "text": "ภาษาไทย?"},
        {"role": "bot", "text": "ใช่ 😀"},
    ],
}


def test_loss_mask_covers_exactly_the_conversation(tiny_model_dir: str) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    enc = encode_record(tok, RECORD, cutoff_len=512)
    assert enc is not None
    prompt_ids = tok(build_prompt(RECORD["background"]))["input_ids"]
    n = len(prompt_ids)
    ids, labels = enc["input_ids"], enc["labels"]
    assert ids[:n] == prompt_ids
    assert labels[:n] == [IGNORE_INDEX] * n
    assert labels[n:] == ids[n:]
    assert ids[-1] == tok.eos_token_id
    assert tok.decode(ids[n:-1]) == build_completion(RECORD["turns"])
    assert enc["attention_mask"] == [1] * len(ids)


def test_train_on_prompt_reproduces_the_original_recipe(tiny_model_dir: str) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    enc = encode_record(tok, RECORD, cutoff_len=512, train_on_prompt=True)
    assert enc is not None
    assert enc["labels"] == enc["input_ids"]


def test_the_original_recipe_cuts_at_the_cutoff_and_drops_records_with_no_conversation_left(
    tiny_model_dir: str,
) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    n = len(tok(build_prompt(RECORD["background"]))["input_ids"])
    counts: Counter[str] = Counter()
    enc = encode_record(tok, RECORD, cutoff_len=n + 3, truncation="end", counts=counts)
    assert enc is not None
    assert len(enc["input_ids"]) == n + 3
    assert enc["labels"][n:] == enc["input_ids"][n:]
    assert enc["input_ids"][-1] != tok.eos_token_id  # the original recipe loses EOS
    assert encode_record(tok, RECORD, cutoff_len=n, truncation="end", counts=counts) is None
    assert counts == {"cut_at_cutoff": 1, "dropped_too_long": 1}


def test_an_over_long_record_loses_the_end_of_its_background_not_its_conversation(
    tiny_model_dir: str,
) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    long_record = {**RECORD, "background": " ".join([RECORD["background"]] * 6)}
    completion_ids = tok(build_completion(RECORD["turns"]), add_special_tokens=False)["input_ids"]
    full = encode_record(tok, long_record, cutoff_len=4096)
    assert full is not None
    cutoff = len(full["input_ids"]) - 25
    counts: Counter[str] = Counter()
    enc = encode_record(tok, long_record, cutoff_len=cutoff, counts=counts)
    assert enc is not None and counts == {"shortened_background": 1}
    ids, labels = enc["input_ids"], enc["labels"]
    assert len(ids) <= cutoff
    assert ids[-1] == tok.eos_token_id
    n_prompt = labels.index(next(x for x in labels if x != IGNORE_INDEX))
    # Token by token: the whole conversation and EOS are learned, nothing of the prompt is.
    assert tok.decode(ids[n_prompt:-1]) == build_completion(RECORD["turns"])
    assert labels[n_prompt:] == ids[n_prompt:]
    assert labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert len(ids[n_prompt:-1]) >= len(completion_ids) - 1
    prompt = str(tok.decode(ids[:n_prompt], skip_special_tokens=True))
    assert prompt.startswith("Background: The river flows north")
    assert len(prompt) < len(build_prompt(long_record["background"]))


def test_a_record_whose_conversation_alone_does_not_fit_is_dropped_and_counted(
    tiny_model_dir: str,
) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    n_conv = len(tok(build_completion(RECORD["turns"]), add_special_tokens=False)["input_ids"])
    counts: Counter[str] = Counter()
    assert encode_record(tok, RECORD, cutoff_len=n_conv, counts=counts) is None
    assert counts == {"dropped_too_long": 1}
    assert encode_record(tok, RECORD, cutoff_len=512, counts=counts) is not None
    assert counts == {"dropped_too_long": 1}  # a record that fits is not counted


def test_collator_pads_labels_with_ignore_index_and_to_a_multiple_of_eight() -> None:
    batch = PadCollator(pad_token_id=3, pad_to_multiple_of=8)(
        [
            {"input_ids": [1, 5, 6], "labels": [IGNORE_INDEX, 5, 6]},
            {"input_ids": [1, 7, 8, 9, 10], "labels": [IGNORE_INDEX, IGNORE_INDEX, 8, 9, 10]},
        ]
    )
    assert batch["input_ids"].shape == (2, 8)
    assert batch["input_ids"][0].tolist() == [1, 5, 6, 3, 3, 3, 3, 3]
    assert batch["labels"][0].tolist() == [IGNORE_INDEX, 5, 6] + [IGNORE_INDEX] * 5
    assert batch["attention_mask"].sum(dim=1).tolist() == [3, 5]
    assert PadCollator(pad_token_id=0)([{"input_ids": [1], "labels": [1]}])["input_ids"].shape == (
        1,
        1,
    )


def test_bad_records_are_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    good = json.dumps(RECORD)
    bad = json.dumps({**RECORD, "turns": [{"role": "narrator", "text": "x"}]})
    path.write_text(f"{good}\n\n{bad}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"train.jsonl:3: .*narrator"):
        load_records(path)


def test_every_hyperparameter_is_a_flag_with_help_and_round_trips() -> None:
    parser = argparse.ArgumentParser()
    TrainConfig.add_arguments(parser)
    by_dest = {a.dest: a for a in parser._actions}
    for f in dataclasses.fields(TrainConfig):
        assert f.name in by_dest
        assert len(by_dest[f.name].help or "") > 20
    config = TrainConfig(
        base_model="m",
        data_dir="d",
        output_dir="o",
        lora_r=4,
        target_modules=["q_proj", "k_proj"],
        learning_rate=1e-4,
        group_by_length=False,
        resume=True,
    )
    parsed = TrainConfig.from_options(vars(parser.parse_args(config.to_argv())))
    assert parsed == config
    assert vars(parser.parse_args([]))["lora_alpha"] == 16


def test_unknown_config_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="lora_rank"):
        TrainConfig.from_dict({"lora_rank": 8})


def test_deepspeed_configs_are_passed_through_to_the_trainer(tmp_path: Path) -> None:
    v100 = choose_precision(DeviceInfo(kind="cuda", name="V100", capability=(7, 0)))
    for name, stage in (("zero2", 2), ("zero3", 3)):
        kwargs = training_arguments_kwargs(
            TrainConfig(output_dir="o", deepspeed=name), v100, has_eval=True, distributed=True
        )
        assert kwargs["deepspeed"] == str(DEEPSPEED_DIR / f"{name}_v100.json")
        ds = json.loads(Path(kwargs["deepspeed"]).read_text())
        assert ds["zero_optimization"]["stage"] == stage
        assert ds["fp16"]["enabled"] == "auto"  # the Trainer fills it from the chosen precision
        assert kwargs["fp16"] is True
    own = tmp_path / "ds.json"
    own.write_text('{"zero_optimization": {"stage": 1}}')
    kwargs = training_arguments_kwargs(
        TrainConfig(output_dir="o", deepspeed=str(own)), v100, has_eval=False, distributed=True
    )
    assert kwargs["deepspeed"] == str(own)
    assert kwargs["eval_strategy"] == "no"
    with pytest.raises(ValueError, match="no such file"):
        resolve_deepspeed(str(tmp_path / "missing.json"))


def test_training_with_deepspeed_needs_the_package(
    tiny_model_dir: str, train_data_dir: str, tmp_path: Path
) -> None:
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("deepspeed is installed here")
    config = TrainConfig(
        base_model=tiny_model_dir,
        data_dir=train_data_dir,
        output_dir=str(tmp_path),
        deepspeed="zero2",
    )
    with pytest.raises(ValueError, match="pip install"):
        train(config)


def test_cpu_arguments_use_length_grouping_and_no_half_precision() -> None:
    cpu = choose_precision(DeviceInfo(kind="cpu"))
    kwargs = training_arguments_kwargs(
        TrainConfig(output_dir="o", eval_steps=5), cpu, has_eval=True, distributed=False
    )
    assert kwargs["train_sampling_strategy"] == "group_by_length"
    assert (kwargs["fp16"], kwargs["bf16"], kwargs["use_cpu"]) == (False, False, True)
    assert (kwargs["eval_strategy"], kwargs["eval_steps"]) == ("steps", 5)
    assert kwargs["output_dir"] == str(Path("o") / "checkpoints")


def test_the_padding_mask_can_be_dropped_under_right_padding(tiny_model_dir: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    short = {**RECORD, "turns": RECORD["turns"][:2]}
    batch = PadCollator(tok.pad_token_id)(
        [encode_record(tok, r, 512) for r in (RECORD, short)]  # type: ignore[misc]
    )
    assert batch["attention_mask"][1].sum() < batch["attention_mask"].shape[1]  # really padded
    with torch.no_grad():
        masked = model(**batch)
        unmasked = model(input_ids=batch["input_ids"], labels=batch["labels"])
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(unmasked.logits[real], masked.logits[real])
    torch.testing.assert_close(unmasked.loss, masked.loss)
