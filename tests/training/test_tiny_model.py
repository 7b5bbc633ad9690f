"""The tiny local model: loads offline, round-trips any text, role tags are single tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from transformers import AutoModelForCausalLM, AutoTokenizer

from modeling.prompting import BOT_TAG, HUMAN_TAG


def test_it_round_trips_thai_and_emoji(tiny_model_dir: str) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "Background: ภาษาไทย 😀\n<human>: สวัสดี?\n<bot>: hello 🦜"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_role_tags_are_single_ids_kept_by_decode(tiny_model_dir: str) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tok(f"{HUMAN_TAG} hi\n{BOT_TAG} yo", add_special_tokens=False)["input_ids"]
    human, bot = (tok.convert_tokens_to_ids(t) for t in (HUMAN_TAG, BOT_TAG))
    assert ids[0] == human
    assert bot in ids
    assert tok.decode(ids, skip_special_tokens=True) == f"{HUMAN_TAG} hi\n{BOT_TAG} yo"


def test_model_matches_tokenizer_and_special_ids(tiny_model_dir: str) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.model_type == "llama"
    assert model.config.vocab_size == len(tok)
    assert model.config.pad_token_id == tok.pad_token_id != tok.eos_token_id
    assert model.config.eos_token_id == tok.eos_token_id


@pytest.mark.django_db
def test_command_builds_from_train_jsonl(tmp_path: Path) -> None:
    corpus = tmp_path / "train.jsonl"
    rec = {
        "id": "a",
        "background": "Cats sleep.",
        "turns": [{"role": "human", "text": "Do cats sleep?"}, {"role": "bot", "text": "Yes."}],
        "source_line": 1,
    }
    corpus.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    call_command(
        "make_tiny_model", str(tmp_path / "m"), "--corpus", str(corpus), "--hidden-size", "32"
    )
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "m").config.hidden_size == 32


def test_command_names_the_bad_line(tmp_path: Path) -> None:
    corpus = tmp_path / "train.jsonl"
    corpus.write_text('{"id": "a"}\n{oops\n', encoding="utf-8")
    with pytest.raises(CommandError, match=r"train.jsonl:1: .*background"):
        call_command("make_tiny_model", str(tmp_path / "m"), "--corpus", str(corpus))


def test_pretraining_lowers_the_corpus_loss_and_saves_in_place(tmp_path: Path) -> None:
    import torch

    from modeling.tiny_model import build_tiny_model, pretrain_tiny_model

    corpus = [f"Background: The {w} is red.\n<human>: What colour?\n<bot>: Red." for w in "abcd"]
    out = build_tiny_model(tmp_path / "m", corpus * 4, hidden_size=32, seed=1)
    tok = AutoTokenizer.from_pretrained(out)
    batch = tok(corpus, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)

    def loss() -> float:
        model = AutoModelForCausalLM.from_pretrained(out).eval()
        with torch.no_grad():
            return float(model(**batch, labels=labels).loss)

    before = loss()
    seen: list[int] = []
    losses = pretrain_tiny_model(
        out, corpus, steps=30, batch_size=4, seed=1, on_step=lambda s, _: seen.append(s)
    )
    assert seen == list(range(1, 31))
    assert len(losses) == 30
    assert loss() < before - 2.0  # the saved weights are the trained ones
    with pytest.raises(ValueError, match="steps"):
        pretrain_tiny_model(out, corpus, steps=0)
