"""LLaMA checkpoints that carry only `tokenizer.model` (SentencePiece), like the
`decapoda-research/llama-7b-hf` the original study fine-tuned, train and generate.

Without `sentencepiece` and `protobuf` installed, transformers cannot convert such a tokenizer and
fails with a misleading "tiktoken is required" message; both are now declared dependencies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modeling.generation import Background, GenerationParams, generate_conversations, load_model
from modeling.training import TrainConfig, train

CORPUS = [
    "Background: The river flows north through the valley and feeds the old mill.",
    "<human>: Which way does the river flow?",
    "<bot>: It flows north through the valley.",
    "Background: A prime number has exactly two divisors, one and itself.",
    "<human>: How many divisors does a prime have?",
    "<bot>: Exactly two.",
]


@pytest.fixture(scope="module")
def sentencepiece_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LlamaForCausalLM whose folder has tokenizer.model and no tokenizer.json."""
    import sentencepiece as spm
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("sp-llama")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(CORPUS * 40), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(root / "tokenizer"),
        vocab_size=160,
        model_type="bpe",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        character_coverage=1.0,
        minloglevel=2,
    )
    model_dir = root / "model"
    model_dir.mkdir()
    (root / "tokenizer.model").rename(model_dir / "tokenizer.model")
    (model_dir / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "LlamaTokenizer",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
                "add_bos_token": True,
            }
        )
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=160,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(model_dir)
    assert not (model_dir / "tokenizer.json").exists()
    return model_dir


@pytest.mark.slow
def test_a_checkpoint_with_only_tokenizer_model_trains_and_generates(
    sentencepiece_llama: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    record: dict[str, Any] = {
        "id": "r1",
        "background": "The river flows north through the valley and feeds the old mill.",
        "turns": [
            {"role": "human", "text": "Which way does the river flow?"},
            {"role": "bot", "text": "It flows north."},
        ],
    }
    (data / "train.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    result = train(
        TrainConfig(
            base_model=str(sentencepiece_llama),
            data_dir=str(data),
            output_dir=str(tmp_path / "lora"),
            max_steps=2,
            micro_batch_size=1,
            gradient_accumulation_steps=1,
            eval_steps=0,
            save_steps=0,
            logging_steps=1,
        )
    )
    assert result.status == "succeeded" and result.info["data"]["n_train_used"] == 1

    model, tok = load_model(str(sentencepiece_llama), str(tmp_path / "lora"), device="cpu")
    assert tok.decode(tok("<human>: Which way?")["input_ids"], skip_special_tokens=True) == (
        "<human>: Which way?"
    )
    records = list(
        generate_conversations(
            model,
            tok,
            [Background(record["background"], "r1", 0)],
            GenerationParams(max_new_tokens=5, temperature=0.0),
        )
    )
    assert len(records) == 1 and records[0]["raw_text"].startswith("<human>:")
