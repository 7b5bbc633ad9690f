"""Trained tokens per second: `modeling.training.train` vs the original alpaca-lora style recipe.

Both run one epoch over the same records, on the same locally built model, with the same LoRA
config and the same effective batch (optimizer steps). The baseline is the original recipe:
`padding=False` tokenization, `DataCollatorForSeq2Seq(pad_to_multiple_of=8)`, micro batch 1 with
gradient accumulation, random order, loss on prompt and conversation. Ours: micro batches of
similar-length sequences (length-grouped sampler), loss only on the conversation, no padding to 8
on CPU. Throughput counts non-padding tokens fed to the model (the same for both recipes).

    OMP_NUM_THREADS=1 .venv/bin/python bench/train_throughput.py
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = [
    *[
        "the",
        "river",
        "city",
        "forest",
        "mountain",
        "valley",
        "old",
        "new",
        "large",
        "small",
        "north",
        "south",
        "people",
        "built",
    ],
    *[
        "long",
        "ago",
        "many",
        "birds",
        "water",
        "trade",
        "road",
        "market",
        "school",
        "history",
        "king",
        "village",
        "farm",
        "rain",
    ],
    *[
        "summer",
        "winter",
        "bridge",
        "island",
        "lake",
        "desert",
        "famous",
        "known",
        "because",
        "after",
        "before",
        "during",
    ],
]


def make_records(n: int, seed: int) -> list[dict[str, Any]]:
    """Records shaped like prepared OIG data: Backgrounds from 1 to ~40 sentences, 2-6 turns."""
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))).capitalize() + "."

    records = []
    for i in range(n):
        # Log-uniform lengths: OIG Backgrounds range from a line to several paragraphs.
        n_sent = round(2 ** rng.uniform(0, 5.3))
        turns = []
        for t in range(rng.choice((2, 2, 4, 6))):
            turns.append({"role": "human" if t % 2 == 0 else "bot", "text": sentence()})
        records.append(
            {
                "id": f"r{i}",
                "background": " ".join(sentence() for _ in range(n_sent)),
                "turns": turns,
                "source_line": i + 1,
            }
        )
    return records


def run_baseline(model_dir: str, data_dir: str, out: str, args: argparse.Namespace) -> dict:
    """The original recipe, written as the alpaca-lora script does it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )

    from modeling.prompting import build_completion, build_prompt
    from modeling.training import load_records

    tok = AutoTokenizer.from_pretrained(model_dir)

    def tokenize(rec: dict[str, Any]) -> dict[str, list[int]]:
        text = build_prompt(rec["background"]) + build_completion(rec["turns"])
        result = tok(text, truncation=True, max_length=args.cutoff_len, padding=False)
        ids = list(result["input_ids"])
        if ids[-1] != tok.eos_token_id and len(ids) < args.cutoff_len:
            ids.append(tok.eos_token_id)
        return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": list(ids)}

    data = [tokenize(r) for r in load_records(Path(data_dir) / "train.jsonl")]
    torch.manual_seed(args.seed)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(
        base,
        LoraConfig(
            r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"],
            bias="none", task_type="CAUSAL_LM",
        ),
    )  # fmt: skip
    targs = TrainingArguments(
        output_dir=out,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=args.batch,
        num_train_epochs=1,
        learning_rate=3e-4,
        warmup_steps=0,
        logging_steps=1000,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=args.seed,
        disable_tqdm=True,
        remove_unused_columns=False,
    )
    collator = DataCollatorForSeq2Seq(tok, pad_to_multiple_of=8, return_tensors="pt", padding=True)
    trainer = Trainer(model=model, args=targs, train_dataset=data, data_collator=collator)
    started = time.perf_counter()
    trainer.train()
    runtime = time.perf_counter() - started
    tokens = sum(len(d["input_ids"]) for d in data)
    padded = sum((len(d["input_ids"]) + 7) // 8 * 8 for d in data)
    return {"runtime_s": runtime, "tokens": tokens, "padded_tokens": padded, "steps": 0}


def run_ours(
    model_dir: str, data_dir: str, out: str, args: argparse.Namespace, micro_batch: int
) -> dict:
    from modeling.training import TrainConfig, train

    config = TrainConfig(
        base_model=model_dir,
        data_dir=data_dir,
        output_dir=out,
        num_epochs=1,
        micro_batch_size=micro_batch,
        gradient_accumulation_steps=max(1, args.batch // micro_batch),
        cutoff_len=args.cutoff_len,
        warmup_steps=0,
        learning_rate=3e-4,
        eval_steps=0,
        save_steps=0,
        logging_steps=1000,
        seed=args.seed,
    )
    result = train(config)
    return {
        "runtime_s": result.metrics["train_runtime_s"],
        "tokens": result.metrics["tokens_input"],
        "steps": result.global_step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=192, help="training records (one epoch)")
    parser.add_argument("--hidden", type=int, default=256, help="model width")
    parser.add_argument("--layers", type=int, default=4, help="decoder layers")
    parser.add_argument("--heads", type=int, default=8, help="attention heads")
    parser.add_argument("--batch", type=int, default=16, help="sequences per optimizer step")
    parser.add_argument(
        "--micro-batches", default="4,16", help="our micro batch sizes to measure (comma list)"
    )
    parser.add_argument("--cutoff-len", type=int, default=512, help="longest sequence")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each; the fastest counts")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    args = parser.parse_args()
    micro_batches = [int(m) for m in args.micro_batches.split(",")]

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()

    from modeling.prompting import build_training_text
    from modeling.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        records = make_records(args.records, args.seed)
        (data_dir / "train.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
        )
        model_dir = str(
            build_tiny_model(
                Path(tmp) / "model",
                [build_training_text(r["background"], r["turns"]) for r in records],
                vocab_size=2048,
                hidden_size=args.hidden,
                num_layers=args.layers,
                num_heads=args.heads,
                max_position_embeddings=args.cutoff_len,
                seed=args.seed,
            )
        )
        vocab = json.loads((Path(model_dir) / "config.json").read_text())["vocab_size"]
        # Alternate the recipes and keep each one's fastest run: the machine may be shared.
        runs: dict[str, list[dict]] = {"baseline": [], **{f"mb{m}": [] for m in micro_batches}}
        for i in range(args.repeats):
            runs["baseline"].append(run_baseline(model_dir, str(data_dir), f"{tmp}/b{i}", args))
            for m in micro_batches:
                runs[f"mb{m}"].append(
                    run_ours(model_dir, str(data_dir), f"{tmp}/o{m}-{i}", args, m)
                )
    best = {k: min(v, key=lambda r: r["runtime_s"]) for k, v in runs.items()}
    tokens = best["baseline"]["tokens"]
    assert all(r["tokens"] == tokens for r in best.values()), best
    base_tps = tokens / best["baseline"]["runtime_s"]
    summary: dict[str, Any] = {
        "records": args.records,
        "model": f"llama hidden={args.hidden} layers={args.layers} heads={args.heads} "
        f"vocab={vocab}",
        "threads": torch.get_num_threads(),
        "tokens_per_epoch": tokens,
        "batch": args.batch,
        "baseline_s": round(best["baseline"]["runtime_s"], 2),
        "baseline_tok_per_s": round(base_tps, 1),
    }
    for m in micro_batches:
        tps = tokens / best[f"mb{m}"]["runtime_s"]
        summary[f"mb{m}_s"] = round(best[f"mb{m}"]["runtime_s"], 2)
        summary[f"mb{m}_tok_per_s"] = round(tps, 1)
        summary[f"mb{m}_ratio"] = round(tps / base_tps, 2)
    if args.json:
        print(json.dumps(summary))
        return
    print(f"model: {summary['model']}; torch threads: {summary['threads']}")
    print(f"{args.records} records, {tokens} non-padding tokens per epoch, {args.batch} per step")
    print(f"baseline (micro batch 1 x accumulation {args.batch}, pad to 8, loss on everything): "
          f"{best['baseline']['runtime_s']:.2f} s, {base_tps:,.0f} tok/s")  # fmt: skip
    for m in micro_batches:
        line = f"train_lora micro batch {m} x accumulation {max(1, args.batch // m)}"
        tps, ratio = summary[f"mb{m}_tok_per_s"], summary[f"mb{m}_ratio"]
        print(f"{line} (length-grouped, loss mask): {summary[f'mb{m}_s']:.2f} s, "
              f"{tps:,.0f} tok/s, ratio {ratio:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
