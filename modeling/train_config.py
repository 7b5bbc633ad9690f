"""`TrainConfig`: every hyperparameter of a LoRA run, with its default and help text.

Pure core: no Django. The `train_lora` flags, the web form and `run.json` are all built from this
one dataclass, so a flag cannot drift from the form or from what a run records.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeling import options
from modeling.train_data import TRUNCATIONS

__all__ = ["DEEPSPEED_DIR", "REPORT_TO", "TrainConfig", "resolve_deepspeed"]

DEEPSPEED_DIR = Path(__file__).resolve().parent / "deepspeed"
REPORT_TO = ("none", "tensorboard", "wandb")


def _f(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with its CLI help text."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    """Every hyperparameter of a LoRA run with default and help text (the CLI is built from it)."""

    base_model: str = _f("", "base model: a local directory or a Hugging Face model id")
    data_dir: str = _f("", "directory with train.jsonl and val.jsonl from prepare_data")
    output_dir: str = _f("", "where the adapter, tokenizer, run.json and checkpoints go")
    # LoRA
    lora_r: int = _f(8, "LoRA rank")
    lora_alpha: int = _f(16, "LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = _f(0.05, "dropout on the LoRA input")
    target_modules: list[str] = _f(  # noqa: RUF009  (_f copies the list per instance)
        ["q_proj", "v_proj"], "modules that get LoRA adapters (or the single word all-linear)"
    )
    # Optimisation
    learning_rate: float = _f(3e-4, "peak learning rate (AdamW)")
    num_epochs: float = _f(3.0, "passes over the training data (ignored when max_steps > 0)")
    max_steps: int = _f(-1, "stop after this many optimizer steps (-1: use num_epochs)")
    micro_batch_size: int = _f(8, "sequences per device per forward pass")
    gradient_accumulation_steps: int = _f(
        4, "micro batches per optimizer step (global batch = micro x accumulation x GPUs)"
    )
    warmup_steps: float = _f(0.03, "linear warm-up: steps if >= 1, else a fraction of all steps")
    lr_scheduler: str = _f("linear", "learning-rate schedule after warm-up (linear, cosine, ...)")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    seed: int = _f(42, "seed for LoRA init, data order and dropout")
    # Data
    cutoff_len: int = _f(512, "longest sequence in tokens; longer records are truncated")
    train_on_prompt: bool = _f(
        False,
        "also train on the Background prompt, as the original recipe did "
        "(off: the loss covers only the conversation)",
    )
    truncation: str = _f(
        "background",
        "records longer than cutoff_len: background = shorten the Background so the whole "
        "conversation and EOS fit; end = cut at cutoff_len (the original recipe)",
        choices=TRUNCATIONS,
    )
    group_by_length: bool = _f(
        True, "batch sequences of similar length together so padding wastes little compute"
    )
    max_train_records: int = _f(0, "use only the first N training records (0: all)")
    train_role_token_rows: bool = _f(
        False,
        "also train the embedding and output rows of role tags (<human>:, <bot>:) that were "
        "added to the tokenizer as single tokens and that the base model never saw",
    )
    # Schedule of evaluation, logging and checkpoints
    eval_steps: int = _f(200, "evaluate on val.jsonl every N optimizer steps (0: only at the end)")
    logging_steps: int = _f(10, "log the training loss every N steps (the loss curve)")
    save_steps: int = _f(200, "write a resumable checkpoint every N steps")
    save_total_limit: int = _f(2, "keep at most this many checkpoints")
    # Hardware
    precision: str = _f(
        "auto",
        "auto: bf16 where supported, fp16 with loss scaling on V100, fp32 on CPU",
        choices=("auto", "fp32", "fp16", "bf16"),
    )
    gradient_checkpointing: bool = _f(False, "recompute activations in backward to save memory")
    deepspeed: str = _f("", "DeepSpeed ZeRO: zero2, zero3 or a JSON config path (empty: off)")
    resume: bool = _f(False, "continue from the last checkpoint in output_dir")
    init_adapter: str = _f(
        "",
        "start from this trained LoRA adapter folder (PEFT format) instead of a fresh one; its "
        "rank, alpha and target modules are used",
    )
    keep_best: bool = _f(
        True,
        "keep the adapter of the evaluation with the lowest validation loss, not the last step's "
        "(checkpoints are then written at every evaluation)",
    )
    report_to: str = _f(
        "none",
        "also log to tensorboard (in output_dir/logs) or wandb (pip install 'convgen[tensorboard]' "
        "or 'convgen[wandb]')",
        choices=REPORT_TO,
    )
    dataloader_workers: int = _f(0, "data loader worker processes")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from a mapping; unknown keys are an error so typos do not pass silently."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**dict(data))

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *, skip: Sequence[str] = ()) -> None:
        """Add one `--flag` per field, with type, default and help from the dataclass."""
        options.add_dataclass_arguments(parser, cls, skip=skip)

    @classmethod
    def from_options(cls, parsed: Mapping[str, Any]) -> TrainConfig:
        """Pick this dataclass's fields out of parsed options (argparse dest names)."""
        config: TrainConfig = options.from_options(cls, parsed)
        return config

    def to_argv(self) -> list[str]:
        """Flags that rebuild this config through `add_arguments` (to re-launch via torchrun)."""
        argv: list[str] = []
        for f in dataclasses.fields(self):
            flag = "--" + f.name.replace("_", "-")
            value = getattr(self, f.name)
            if isinstance(value, bool):
                argv.append(flag if value else "--no-" + flag[2:])
            elif isinstance(value, list):
                argv += [flag, *map(str, value)]
            else:
                argv += [flag, str(value)]
        return argv

    def validate(self) -> None:
        """Raise ValueError naming the first bad option."""
        if not self.base_model:
            raise ValueError("base_model is required")
        if not self.output_dir:
            raise ValueError("output_dir is required")
        if not (Path(self.data_dir) / "train.jsonl").is_file():
            raise ValueError(f"{Path(self.data_dir) / 'train.jsonl'}: no such file")
        for name in ("lora_r", "lora_alpha", "micro_batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.cutoff_len < 8:
            raise ValueError("cutoff_len must be at least 8")
        if self.truncation not in TRUNCATIONS:
            raise ValueError(f"truncation {self.truncation!r}: expected {' or '.join(TRUNCATIONS)}")
        if self.max_steps <= 0 and self.num_epochs <= 0:
            raise ValueError("set num_epochs > 0 or max_steps > 0")
        if self.precision not in ("auto", "fp32", "fp16", "bf16"):
            raise ValueError(f"precision {self.precision!r}: expected auto, fp32, fp16 or bf16")
        if not self.target_modules:
            raise ValueError("target_modules is empty")
        if self.report_to not in REPORT_TO:
            raise ValueError(f"report_to {self.report_to!r}: expected {', '.join(REPORT_TO)}")
        if self.resume and self.init_adapter:
            raise ValueError("--resume and --init-adapter exclude each other")
        resolve_deepspeed(self.deepspeed)


def resolve_deepspeed(value: str) -> str:
    """Map zero2/zero3 to the shipped JSON configs; a path must exist. Empty stays empty."""
    if not value:
        return ""
    shipped = {"zero2": "zero2_v100.json", "zero3": "zero3_v100.json"}
    path = DEEPSPEED_DIR / shipped[value] if value in shipped else Path(value)
    if not path.is_file():
        raise ValueError(f"deepspeed config {value!r}: no such file {path}")
    json.loads(path.read_text(encoding="utf-8"))  # fail early on a broken file
    return str(path)
