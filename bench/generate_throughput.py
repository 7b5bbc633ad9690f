"""New tokens per second of batched `generate_conversations` vs the original one-at-a-time loop.

Both sides use the same tiny model (built locally, no download), the same prompts, sampling
settings and exactly the same number of new tokens per output (min_new_tokens = max_new_tokens, and
the real count of new tokens is what is divided by time). The baseline is the original
deployment's loop: tokenize one Background, `model.generate`, decode, next.

    OMP_NUM_THREADS=1 .venv/bin/python bench/generate_throughput.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CORPUS = [
    "Background: The river flows north through the valley and feeds the old mill.\n"
    "<human>: Which way does the river flow?\n<bot>: It flows north through the valley.",
    "Background: Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.\n"
    "<human>: What does photosynthesis produce?\n<bot>: Sugar and oxygen.",
    "Background: ภาษาไทยเป็นภาษาราชการของประเทศไทย\n<human>: ภาษาราชการของไทยคืออะไร\n<bot>: ภาษาไทย",
    "Background: A prime number has exactly two divisors, one and itself.\n"
    "<human>: How many divisors does a prime have?\n<bot>: Exactly two. Examples include: 2, 3, 5.",
]
SENTENCES = [
    "The river flows north through the valley and feeds the old mill.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "A prime number has exactly two divisors, one and itself.",
    "ภาษาไทยเป็นภาษาราชการของประเทศไทย",
    "The mill was built in 1820 and still grinds flour every autumn.",
]


def backgrounds(n: int) -> list[str]:
    """Backgrounds of 1 to 4 sentences, so prompt lengths vary as in real data."""
    return [
        " ".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(1 + i % 4)) for i in range(n)
    ]


def main() -> None:
    import torch

    from modeling.generation import (
        Background,
        GenerationParams,
        generate_conversations,
        load_model,
    )
    from modeling.prompting import build_prompt
    from modeling.tiny_model import build_tiny_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="Backgrounds for the batched runs")
    ap.add_argument("--n-baseline", type=int, default=64, help="Backgrounds for the baseline")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--batch-sizes", default="1,4,8,16,32,64")
    ap.add_argument("--hidden-size", type=int, default=64, help="64 = the test suite's tiny model")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument(
        "--repeats", type=int, default=5, help="best of N timings (the machine is shared)"
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_model(
            tmp, CORPUS * 8, seed=0, hidden_size=args.hidden_size, num_layers=args.layers
        )
        model, tok = load_model(tmp, device="cpu")
    lm: Any = model  # transformers' stubs hide generate() from mypy
    texts = backgrounds(args.n)
    params = GenerationParams(
        max_new_tokens=args.new_tokens,
        min_new_tokens=args.new_tokens,
        temperature=0.7,
        top_p=0.9,
        top_k=50,
        repetition_penalty=1.1,
        seed=0,
    )
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, model hidden "
        f"{args.hidden_size} x {args.layers} layers, {args.new_tokens} new tokens per output"
    )

    # Baseline: the original loop, one Background per generate() call.
    def baseline(bgs: list[str]) -> tuple[int, float]:
        torch.manual_seed(0)
        start, n_tokens = time.perf_counter(), 0
        for text in bgs:
            enc = tok(build_prompt(text), return_tensors="pt")
            with torch.inference_mode():
                out = lm.generate(
                    **enc,
                    max_new_tokens=args.new_tokens,
                    min_new_tokens=args.new_tokens,
                    do_sample=True,
                    temperature=0.7,
                    top_p=0.9,
                    top_k=50,
                    repetition_penalty=1.1,
                    pad_token_id=tok.pad_token_id,
                )
            new = out[0, enc["input_ids"].shape[1] :]
            tok.decode(new, skip_special_tokens=True)
            n_tokens += int(new.numel())
        return n_tokens, time.perf_counter() - start

    def batched(bgs: list[str], batch_size: int) -> tuple[int, float]:
        p = GenerationParams(**(params.to_dict() | {"batch_size": batch_size}))
        items = [Background(t, "", i) for i, t in enumerate(bgs)]
        start = time.perf_counter()
        n_tokens = sum(r["n_new_tokens"] for r in generate_conversations(model, tok, items, p))
        return n_tokens, time.perf_counter() - start

    sizes = [int(x) for x in args.batch_sizes.split(",")]
    methods: dict[str, Callable[[], tuple[int, float]]] = {
        "original loop (1 at a time)": lambda: baseline(texts[: args.n_baseline])
    }
    for bs in sizes:
        methods[f"generate, batch {bs}"] = lambda bs=bs: batched(texts, bs)  # type: ignore[misc]
    baseline(texts[:2])  # warm-up: first calls allocate and pick kernels
    for bs in sizes:
        batched(texts[: min(bs, 8)], bs)
    # Rounds interleave the methods so that load from other processes hits them all alike;
    # each method keeps its best round.
    best: dict[str, tuple[int, float]] = {}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            n_tokens, secs = fn()
            if name not in best or secs < best[name][1]:
                best[name] = (n_tokens, secs)
    base_tokens, base_s = best["original loop (1 at a time)"]
    base_tps = base_tokens / base_s
    print(f"\n{'method':<28}{'outputs':>8}{'new tok':>9}{'seconds':>9}{'tok/s':>9}{'ratio':>8}")
    for name, (n_tokens, secs) in best.items():
        n_out = args.n_baseline if name.startswith("original") else args.n
        assert n_tokens == n_out * args.new_tokens, "every output must have the same length"
        tps = n_tokens / secs
        print(f"{name:<28}{n_out:>8}{n_tokens:>9}{secs:>9.2f}{tps:>9.0f}{tps / base_tps:>7.1f}x")


if __name__ == "__main__":
    main()
