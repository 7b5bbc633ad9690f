"""`manage.py make_tiny_model OUT_DIR --corpus DIR/train.jsonl`: a tiny local LLaMA for demos."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from modeling.tiny_model import build_tiny_model, corpus_texts, pretrain_tiny_model


class Command(BaseCommand):
    help = "Build a tiny random LlamaForCausalLM and a BPE tokenizer trained on a corpus."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("output_dir", help="where to write the model and tokenizer")
        parser.add_argument(
            "--corpus", required=True, help="prepared train.jsonl (background + turns per line)"
        )
        parser.add_argument("--vocab-size", type=int, default=1024, help="BPE vocabulary size")
        parser.add_argument("--hidden-size", type=int, default=64, help="model width")
        parser.add_argument("--num-layers", type=int, default=2, help="decoder layers")
        parser.add_argument("--num-heads", type=int, default=4, help="attention heads")
        parser.add_argument(
            "--max-position-embeddings", type=int, default=512, help="longest sequence"
        )
        parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
        parser.add_argument(
            "--pretrain-steps",
            type=int,
            default=0,
            help="full-parameter training steps on the corpus after building (0: leave it "
            "random); a stand-in for a real base model's pretraining, so demos write words",
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="no progress bar while pretraining"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        corpus = Path(opts["corpus"])
        if not corpus.is_file():
            raise CommandError(f"{corpus}: no such file")
        try:
            texts = corpus_texts(corpus)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not texts:
            raise CommandError(f"{corpus}: no records")
        if opts["pretrain_steps"] < 0:
            raise CommandError("--pretrain-steps must be >= 0")
        out = build_tiny_model(
            opts["output_dir"],
            texts,
            vocab_size=opts["vocab_size"],
            hidden_size=opts["hidden_size"],
            num_layers=opts["num_layers"],
            num_heads=opts["num_heads"],
            max_position_embeddings=opts["max_position_embeddings"],
            seed=opts["seed"],
        )
        self.stdout.write(f"wrote tiny model to {out} ({len(texts)} corpus texts)")
        steps = opts["pretrain_steps"]
        if steps > 0:
            bar = tqdm(total=steps, desc="pretrain", unit="step", disable=opts["no_progress"])

            def on_step(step: int, loss: float) -> None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

            try:
                losses = pretrain_tiny_model(
                    out, texts, steps=steps, seed=opts["seed"], on_step=on_step
                )
            finally:
                bar.close()
            first, last = losses[0], sum(losses[-10:]) / len(losses[-10:])
            self.stdout.write(f"pretrained {steps} steps: loss {first:.3f} -> {last:.3f}")
