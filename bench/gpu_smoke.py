"""The V100 path on whatever GPU is at hand: fp16 LoRA steps with loss scaling and SDPA, then fp16
batched generation, on the real SmolLM2-135M-Instruct; prints tokens/s, peak memory and the card.

One script, run once when a GPU is lent (about 2 minutes on one card), e.g.

    python bench/gpu_smoke.py                 # fp16 + loss scaling, as on V100
    python bench/gpu_smoke.py --precision auto   # bf16 on Ampere and newer

It fails loudly (exit status 1) when there is no CUDA device, when the loss scaler never ran, when
a loss is not finite, or when the trained adapter writes no parseable conversation.
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
BACKGROUNDS = ROOT / "convgen_site" / "demo_data" / "demo_backgrounds.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precision", default="fp16", choices=("fp16", "bf16", "auto"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--micro-batch-size", type=int, default=16)
    parser.add_argument("--samples", type=int, default=8, help="conversations per Background")
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args()

    import torch
    import transformers

    from modeling.base_model import import_gguf, packaged_gguf
    from modeling.generation import (
        GenerationParams,
        generate_conversations,
        load_model,
        read_backgrounds,
    )
    from modeling.hardware import detect_device
    from modeling.oig.prepare import prepare
    from modeling.quality import summarize_quality
    from modeling.training import TrainConfig, train

    if not torch.cuda.is_available():
        print("no CUDA device: this script checks the GPU path only", file=sys.stderr)
        return 1
    device = detect_device()
    print(
        f"card: {device.name} (sm_{device.capability[0]}{device.capability[1]}, "  # type: ignore[index]
        f"{device.total_memory_gb} GiB) x {device.count}; torch {torch.__version__} "
        f"(CUDA {torch.version.cuda}); transformers {transformers.__version__}",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="convgen-gpu-"))
    base = work / "SmolLM2-135M-Instruct"
    import_gguf(packaged_gguf(), base, progress=lambda m: print(f"  {m}", flush=True))
    prepare(SAMPLE, work / "data", seed=0)

    scaler_scales: list[float] = []

    from transformers import TrainerCallback

    class Probe(TrainerCallback):  # type: ignore[misc]
        trainer: Any = None

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            scaler = getattr(getattr(self.trainer, "accelerator", None), "scaler", None)
            if scaler is not None:
                scaler_scales.append(float(scaler.get_scale()))

    probe = Probe()
    config = TrainConfig(
        base_model=str(base),
        data_dir=str(work / "data"),
        output_dir=str(work / "lora"),
        max_steps=args.steps,
        micro_batch_size=args.micro_batch_size,
        gradient_accumulation_steps=1,
        learning_rate=1e-3,
        warmup_steps=0.1,
        lora_r=16,
        lora_alpha=32,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        cutoff_len=256,
        eval_steps=args.steps,
        save_steps=0,
        logging_steps=5,
        precision=args.precision,
        seed=0,
    )
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = _train_with_probe(train, config, probe)
    train_s = time.perf_counter() - started
    train_peak = torch.cuda.max_memory_allocated() / 2**20
    metrics = result.metrics
    losses = [p["loss"] for p in result.loss_curve if "loss" in p]
    print(
        f"training: {result.info['precision']['name']} (loss scaling "
        f"{'on' if result.info['precision']['fp16'] else 'off'}), attention "
        f"{result.info['precision']['attn_implementation']}; {result.global_step} steps in "
        f"{train_s:.1f} s, {metrics['tokens_per_s']:.0f} tokens/s; peak {train_peak:.0f} MiB; "
        f"loss {losses[0]:.3f} -> {losses[-1]:.3f}; val loss {metrics.get('eval_loss_start')} "
        f"-> {metrics.get('eval_loss')}; loss scale {scaler_scales[-1] if scaler_scales else '-'}",
        flush=True,
    )

    dtype = {"fp16": "float16", "bf16": "bfloat16", "auto": "auto"}[args.precision]
    model, tokenizer = load_model(str(base), config.output_dir, device="cuda", dtype=dtype)
    backgrounds = read_backgrounds(BACKGROUNDS)
    params = GenerationParams(
        max_new_tokens=96, temperature=0.7, num_return_sequences=args.samples, seed=0
    )
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    records = list(generate_conversations(model, tokenizer, backgrounds, params))
    torch.cuda.synchronize()
    gen_s = time.perf_counter() - started
    gen_peak = torch.cuda.max_memory_allocated() / 2**20
    new_tokens = sum(r["n_new_tokens"] for r in records)
    quality = summarize_quality(records)
    print(
        f"generation: {next(model.parameters()).dtype}, {len(records)} conversations, "
        f"{new_tokens} new tokens in {gen_s:.1f} s = {new_tokens / gen_s:.0f} tokens/s; "
        f"peak {gen_peak:.0f} MiB; {quality.line()}",
        flush=True,
    )
    for rec in records[: min(3, len(records))]:
        print(f"  {rec['raw_text'][:200]!r}")
    out = {
        "card": device.name,
        "capability": device.capability,
        "precision": result.info["precision"],
        "train_steps": result.global_step,
        "train_seconds": round(train_s, 2),
        "train_tokens_per_s": metrics["tokens_per_s"],
        "train_peak_mib": round(train_peak),
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "val_loss_start": metrics.get("eval_loss_start"),
        "val_loss": metrics.get("eval_loss"),
        "loss_scale_last": scaler_scales[-1] if scaler_scales else None,
        "generate_tokens_per_s": round(new_tokens / gen_s, 1),
        "generate_peak_mib": round(gen_peak),
        "quality": quality.to_dict(),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    ok = all(map(_finite, losses)) and quality.parsed > 0
    if args.precision == "fp16" and not scaler_scales:
        print("fp16 ran without a loss scaler", file=sys.stderr)
        ok = False
    print("OK" if ok else "FAILED", flush=True)
    return 0 if ok else 1


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")


def _train_with_probe(train: Any, config: Any, probe: Any) -> Any:
    """Run `train` with `probe` as a callback that can see the Trainer (for its loss scaler)."""
    from transformers import Trainer

    original = Trainer.__init__

    def init(self: Any, *args: Any, **kw: Any) -> None:
        original(self, *args, **kw)
        probe.trainer = self

    Trainer.__init__ = init  # type: ignore[method-assign]
    try:
        return train(config, extra_callbacks=[probe])
    finally:
        Trainer.__init__ = original  # type: ignore[method-assign]


if __name__ == "__main__":
    sys.exit(main())
