"""End to end through the shared template: prepare_data -> train_lora -> generate -> parse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeling.generation import Background, GenerationParams, generate_conversations, load_model
from modeling.prompting import render_oig

FACTS = [
    ("The river flows north through the valley.", "Which way does the river flow?", "North."),
    (
        "Photosynthesis makes sugar and oxygen.",
        "What does photosynthesis make?",
        "Sugar and oxygen.",
    ),
    ("A prime has two divisors.", "How many divisors has a prime?", "Two."),
]


@pytest.mark.slow
def test_an_adapter_trained_on_the_template_writes_parseable_conversations(tmp_path: Path) -> None:
    from modeling.oig.prepare import prepare
    from modeling.tiny_model import build_tiny_model
    from modeling.training import TrainConfig, train

    texts = [
        render_oig(f"{bg} Case {i}.", [{"role": "human", "text": q}, {"role": "bot", "text": a}])
        for i in range(40)
        for bg, q, a in [FACTS[i % 3]]
    ]
    (tmp_path / "oig.jsonl").write_text(
        "".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8"
    )
    prepare(tmp_path / "oig.jsonl", tmp_path / "data", val_fraction=0.1)
    build_tiny_model(tmp_path / "base", texts, seed=0)
    result = train(
        TrainConfig(
            base_model=str(tmp_path / "base"),
            data_dir=str(tmp_path / "data"),
            output_dir=str(tmp_path / "adapter"),
            max_steps=60,
            learning_rate=3e-3,
            micro_batch_size=8,
            lora_r=16,
            target_modules=[
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            ],
            eval_steps=0,
            save_steps=1000,
            logging_steps=20,
        )
    )
    assert result.status == "succeeded"

    model, tok = load_model(str(tmp_path / "base"), str(tmp_path / "adapter"), device="cpu")
    bgs = [Background(bg, "", i) for i, (bg, _, _) in enumerate(FACTS)]
    records = list(
        generate_conversations(
            model, tok, bgs, GenerationParams(temperature=0, max_new_tokens=30, batch_size=3)
        )
    )
    assert all(r["parse_ok"] for r in records), [r["raw_text"] for r in records]
    assert [(r["question"], r["answer"]) for r in records] == [(q, a) for _, q, a in FACTS]
