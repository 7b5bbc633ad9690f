"""Fixtures for generation tests: a loaded tiny model, a random LoRA adapter, Backgrounds files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

BACKGROUNDS = [
    "The river flows north through the valley and feeds the old mill.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "A prime number has exactly two divisors, one and itself.",
    "ภาษาไทยเป็นภาษาราชการของประเทศไทย",
    "The mill was built in 1820 and still grinds flour every autumn.",
    "Oxygen is released by plants into the air during the day.",
    "Two and three are the smallest prime numbers.",
]


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir: str) -> Any:
    """(model, tokenizer) of the session's tiny model, loaded once."""
    from modeling.generation import load_model

    return load_model(tiny_model_dir, device="cpu")


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random (non-zero) LoRA adapter on the tiny model, saved in PEFT format with a tokenizer."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("tiny-adapter")
    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    peft_model = get_peft_model(base, config)
    peft_model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return str(out)


@pytest.fixture
def backgrounds_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "backgrounds.jsonl"
    path.write_text(
        "".join(
            json.dumps({"background": bg, "id": f"bg-{i}"}, ensure_ascii=False) + "\n"
            for i, bg in enumerate(BACKGROUNDS)
        ),
        encoding="utf-8",
    )
    return path
