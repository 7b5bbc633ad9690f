"""`manage.py make_tiny_model OUT_DIR --corpus DIR/train.jsonl`: a tiny local LLaMA for demos."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from modeling.tiny_model import build_tiny_model, corpus_texts


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
