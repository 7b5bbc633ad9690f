"""LoRA fine-tuning of a causal LM on prepared conversations (transformers Trainer + peft).

Pure core: no Django. `TrainConfig` (`modeling.train_config`) holds every hyperparameter; records
become token ids in `modeling.train_data`; the hardware rule is `modeling.hardware`; callbacks
are in `modeling.trainer_hooks`. This module (about 500 lines: `train` is one long, linear
recipe, easier to follow in one place) wires them to the Trainer: `train(config, hooks)` runs one
training run
(single process, or one rank of a `torchrun` launch) and writes, on rank 0 only, the adapter in
PEFT format, the tokenizer beside it and `run.json` (config, seed, data hash, loss curve, metrics).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeling.hardware import (
    DeviceInfo,
    Precision,
    choose_precision,
    detect_device,
    world_info,
)
from modeling.prompting import SPECIAL_TOKENS
from modeling.train_config import DEEPSPEED_DIR, TrainConfig, resolve_deepspeed
from modeling.train_data import (
    IGNORE_INDEX,
    PadCollator,
    conversation_loss,
    encode_record,
    load_records,
)
from modeling.trainer_hooks import (
    TOKEN_COUNTS_FILE,
    TrainHooks,
    _all_reduce_sum,
    _make_hook_callback,
    _make_token_count_callback,
    _make_trainer_class,
    _rng_preserved,
)

__all__ = [
    "DEEPSPEED_DIR",
    "IGNORE_INDEX",
    "DeviceInfo",
    "PadCollator",
    "Precision",
    "TrainConfig",
    "TrainHooks",
    "TrainResult",
    "choose_precision",
    "conversation_loss",
    "detect_device",
    "encode_record",
    "file_sha256",
    "load_records",
    "model_load_kwargs",
    "preflight",
    "resolve_deepspeed",
    "train",
    "training_arguments_kwargs",
    "world_info",
]

RUN_FILE = "run.json"
CHECKPOINT_SUBDIR = "checkpoints"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# --- Training ---------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """Outcome of `train`; `info` is what run.json holds."""

    status: str  # succeeded or cancelled
    output_dir: str
    global_step: int
    total_steps: int
    loss_curve: list[dict[str, float]]
    metrics: dict[str, Any]
    info: dict[str, Any]
    model: Any = field(default=None, repr=False)  # the trained PeftModel, for callers in-process


def training_arguments_kwargs(
    config: TrainConfig, precision: Precision, *, has_eval: bool, distributed: bool
) -> dict[str, Any]:
    """Keyword arguments for `transformers.TrainingArguments` (pure, so it is testable)."""
    eval_steps = config.eval_steps if has_eval and config.eval_steps > 0 else None
    keep_best = bool(config.keep_best and eval_steps)
    save_steps = config.save_steps if config.save_steps > 0 else 500
    if keep_best and eval_steps and save_steps % eval_steps:
        # The Trainer can only keep the best evaluation if a checkpoint is written at each one.
        save_steps = eval_steps
    return {
        "output_dir": str(Path(config.output_dir) / CHECKPOINT_SUBDIR),
        "per_device_train_batch_size": config.micro_batch_size,
        "per_device_eval_batch_size": config.micro_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "num_train_epochs": config.num_epochs,
        "max_steps": config.max_steps,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": config.lr_scheduler,
        "warmup_steps": config.warmup_steps,
        "weight_decay": config.weight_decay,
        "max_grad_norm": config.max_grad_norm,
        "seed": config.seed,
        "data_seed": config.seed,
        "fp16": precision.fp16,
        "bf16": precision.bf16,
        "tf32": precision.tf32 or None,
        "use_cpu": precision.pad_to_multiple_of is None,
        "gradient_checkpointing": config.gradient_checkpointing,
        # Non-reentrant checkpointing works with frozen embeddings (no enable_input_require_grads).
        "gradient_checkpointing_kwargs": {"use_reentrant": False},
        "train_sampling_strategy": "group_by_length" if config.group_by_length else "random",
        "logging_steps": config.logging_steps,
        "logging_first_step": True,
        "eval_strategy": "steps" if eval_steps else "no",
        "eval_steps": eval_steps,
        "save_strategy": "steps" if config.save_steps > 0 or keep_best else "no",
        "save_steps": save_steps,
        "save_total_limit": config.save_total_limit,
        # The best checkpoint is kept whatever save_total_limit says, then loaded at the end.
        "load_best_model_at_end": keep_best,
        "metric_for_best_model": "eval_loss" if keep_best else None,
        "greater_is_better": False if keep_best else None,
        "report_to": config.report_to,
        "logging_dir": str(Path(config.output_dir) / "logs"),
        "remove_unused_columns": False,
        "label_names": ["labels"],
        "dataloader_num_workers": config.dataloader_workers,
        "dataloader_pin_memory": precision.pad_to_multiple_of is not None,
        "deepspeed": resolve_deepspeed(config.deepspeed) or None,
        # All LoRA parameters take part in every step; the search for unused ones costs time.
        "ddp_find_unused_parameters": False if distributed else None,
        "ddp_backend": None if precision.pad_to_multiple_of else ("gloo" if distributed else None),
    }


def _for_installed_transformers(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Rename arguments for the installed transformers (v5 renamed a few v4 names)."""
    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    out = dict(kwargs)
    if "activation_checkpointing" in names:
        out["activation_checkpointing"] = out.pop("gradient_checkpointing")
        out["activation_checkpointing_kwargs"] = out.pop("gradient_checkpointing_kwargs")
    if "train_sampling_strategy" not in names:  # transformers 4.x
        out["group_by_length"] = out.pop("train_sampling_strategy") == "group_by_length"
    if "warmup_ratio" in names and 0 < out["warmup_steps"] < 1:  # 4.x: ratios have their own field
        out["warmup_ratio"], out["warmup_steps"] = out["warmup_steps"], 0
    return {k: v for k, v in out.items() if k in names}


def role_token_rows(tokenizer: Any, model: Any) -> dict[str, list[int]]:
    """{module: token ids} of the role tags when the tokenizer has them as added single tokens.

    A real LLaMA tokenizer splits `<human>:` into ordinary, pretrained sub-words (nothing to do);
    a tokenizer extended with the tags (the tiny model, or a user's) has new rows in the input
    embedding and, unless tied, in the output layer, which LoRA alone never trains.
    """
    added = tokenizer.get_added_vocab()
    ids = sorted(added[t] for t in SPECIAL_TOKENS if t in added)
    if not ids:
        return {}
    rows = {"embed_tokens": ids}
    if not getattr(model.config, "tie_word_embeddings", False):
        rows["lm_head"] = ids
    return rows


def _last_checkpoint(config: TrainConfig) -> str | None:
    """The newest complete checkpoint. The Trainer writes trainer_state.json last, so a process
    killed while saving leaves a folder without it (or with a torn one): such folders are skipped.
    """
    folder = Path(config.output_dir) / CHECKPOINT_SUBDIR
    if not folder.is_dir():
        return None
    steps = []
    for path in folder.iterdir():
        name, _, step = path.name.partition("-")
        if name == "checkpoint" and step.isdigit() and path.is_dir():
            steps.append((int(step), path))
    for _, path in sorted(steps, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        return str(path)
    return None


def preflight(config: TrainConfig) -> str | None:
    """Refuse, before anything is created, a run that cannot start; ValueError says why.

    Returns the checkpoint a `resume` run continues from (None for a new run).
    """
    config.validate()
    base = Path(config.base_model).expanduser()
    if base.exists():
        if not (base / "config.json").is_file():
            raise ValueError(f"base model {base}: no config.json (not a checkpoint folder)")
    else:
        from transformers import AutoConfig

        try:  # a hub id must already be in the local cache: convgen never downloads
            AutoConfig.from_pretrained(config.base_model, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"base model {config.base_model!r}: not a local folder, and not a model id in "
                "the local Hugging Face cache"
            ) from exc
    if config.init_adapter:
        adapter = Path(config.init_adapter).expanduser()
        if not (adapter / "adapter_config.json").is_file():
            raise ValueError(f"init adapter {adapter}: no adapter_config.json (not a PEFT adapter)")
    for option, module, extra in (
        (config.deepspeed, "deepspeed", "deepspeed"),
        (config.report_to == "tensorboard", "tensorboard", "tensorboard"),
        (config.report_to == "wandb", "wandb", "wandb"),
    ):
        if option and importlib.util.find_spec(module) is None:
            raise ValueError(
                f"this option needs the {module} package: pip install 'convgen[{extra}]'"
            )
    resumed_from = _last_checkpoint(config) if config.resume else None
    if config.resume and resumed_from is None:
        folder = Path(config.output_dir) / CHECKPOINT_SUBDIR
        raise ValueError(f"--resume: no checkpoint under {folder}")
    return resumed_from


def model_load_kwargs(
    precision: Precision, device: DeviceInfo, config: TrainConfig
) -> dict[str, Any]:
    """`from_pretrained` arguments: dtype, attention, and where the weights go.

    On GPUs each rank loads its copy straight onto its own card (``device_map={"": local_rank}``),
    so host memory holds at most one layer's tensors at a time, not 8 full fp16 copies of the
    model. Not under DeepSpeed, which places (ZeRO-3: shards) the weights itself.
    """
    import torch

    kwargs: dict[str, Any] = {
        "dtype": getattr(torch, precision.torch_dtype),
        "attn_implementation": precision.attn_implementation,
    }
    if device.kind == "cuda" and not config.deepspeed:
        kwargs["device_map"] = {"": world_info()[1]}
    return kwargs


def train(
    config: TrainConfig,
    hooks: TrainHooks | None = None,
    *,
    device: DeviceInfo | None = None,
    extra_callbacks: Iterable[Any] = (),
) -> TrainResult:
    """Train a LoRA adapter; rank 0 writes adapter, tokenizer and run.json into output_dir."""
    import peft
    import torch
    import transformers
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments

    resumed_from = preflight(config)
    _, _, world_size = world_info()
    device = device or detect_device()
    precision = choose_precision(device, config.precision)
    data_dir, out = Path(config.data_dir), Path(config.output_dir)
    train_path, val_path = data_dir / "train.jsonl", data_dir / "val.jsonl"

    # An adapter trained with added role tokens carries its tokenizer: use it to match its rows.
    tok_source = config.base_model
    if config.init_adapter and (Path(config.init_adapter) / "tokenizer_config.json").is_file():
        tok_source = config.init_adapter
    tokenizer = AutoTokenizer.from_pretrained(tok_source)
    if tokenizer.pad_token_id is None:
        # LLaMA ships no pad token; labels and attention mask make the pad id irrelevant.
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    tokenizer.padding_side = "right"

    train_records = load_records(train_path)
    if config.max_train_records:
        train_records = train_records[: config.max_train_records]
    val_records = load_records(val_path) if val_path.is_file() else []
    fit_counts: Counter[str] = Counter()  # training records only; run.json reports them
    train_set = [
        e
        for r in train_records
        if (
            e := encode_record(
                tokenizer,
                r,
                config.cutoff_len,
                train_on_prompt=config.train_on_prompt,
                truncation=config.truncation,
                counts=fit_counts,
            )
        )
        is not None
    ]
    val_set = [
        e
        for r in val_records
        if (
            e := encode_record(
                tokenizer,
                r,
                config.cutoff_len,
                train_on_prompt=config.train_on_prompt,
                truncation=config.truncation,
            )
        )
        is not None
    ]
    if not train_set:
        raise ValueError(f"{train_path}: no record fits in cutoff_len={config.cutoff_len}")

    # TrainingArguments first: with ZeRO-3 it must exist before the model loads (sharded init).
    kwargs = training_arguments_kwargs(
        config, precision, has_eval=bool(val_set), distributed=world_size > 1
    )
    args = TrainingArguments(**_for_installed_transformers(kwargs))
    model = AutoModelForCausalLM.from_pretrained(
        config.base_model, **model_load_kwargs(precision, device, config)
    )
    model.config.use_cache = False  # the KV cache is useless in training and costs memory
    target: str | list[str] = (
        "all-linear" if config.target_modules == ["all-linear"] else list(config.target_modules)
    )
    role_rows = role_token_rows(tokenizer, model) if config.train_role_token_rows else {}
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=target,
        bias="none",
        task_type="CAUSAL_LM",
        # Role tags added to the vocabulary start as untrained rows that LoRA cannot move:
        # train exactly those rows (saved in the adapter) so the model can learn to emit them.
        trainable_token_indices=role_rows or None,
    )
    torch.manual_seed(config.seed)  # LoRA A matrices are random: same seed, same start
    if config.init_adapter:
        # Continue from a trained adapter: its own LoRA settings, every LoRA weight trainable.
        peft_model = PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True)
    else:
        peft_model = get_peft_model(model, lora)
    trainable, total = peft_model.get_nb_trainable_parameters()

    curve: list[dict[str, float]] = []
    hook_cb = _make_hook_callback(hooks, curve)
    trainer_cls = _make_trainer_class()
    trainer = trainer_cls(
        model=peft_model,
        args=args,
        data_collator=PadCollator(tokenizer.pad_token_id, precision.pad_to_multiple_of),
        train_dataset=train_set,
        eval_dataset=val_set or None,
        processing_class=tokenizer,
        callbacks=[hook_cb, *extra_callbacks],
    )
    trainer.add_callback(_make_token_count_callback(trainer))
    if resumed_from:
        counts_file = Path(resumed_from) / TOKEN_COUNTS_FILE
        if counts_file.is_file() and trainer.is_world_process_zero():
            # Rank 0 carries the earlier total; the sum over ranks stays right.
            counts = json.loads(counts_file.read_text())
            trainer.trained_tokens = int(counts["tokens_trained"])
            trainer.input_tokens = int(counts["tokens_input"])
        # Earlier loss points come back from the checkpoint's trainer_state.json.
        state = json.loads((Path(resumed_from) / "trainer_state.json").read_text())
        for log in state.get("log_history", []):
            for key in ("loss", "eval_loss"):
                if key in log:
                    curve.append({"step": int(log["step"]), key: round(float(log[key]), 6)})
    if val_set and not resumed_from and not config.deepspeed:
        # The base model's validation loss: the number LoRA has to beat (step 0 of the curve).
        # (Under DeepSpeed the engine only exists once train() starts, so it is skipped there.)
        # The hook callback puts it on the loss curve like any other evaluation. The random
        # state is put back afterwards, so the run sees the same batches as one without it.
        with _rng_preserved():
            trainer.evaluate()
    counted_before = trainer.input_tokens
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resumed_from)
    runtime = time.perf_counter() - started
    cancelled = bool(hook_cb.cancelled)
    metrics: dict[str, Any] = {"train_loss_mean": round(float(output.training_loss), 6)}
    if val_set and not cancelled:
        # log_history is the same on every rank, so all ranks agree whether to evaluate again.
        step = trainer.state.global_step
        done = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h]
        at_end = [h for h in trainer.state.log_history if "eval_loss" in h and h["step"] == step]
        eval_loss = at_end[-1]["eval_loss"] if at_end else trainer.evaluate()["eval_loss"]
        metrics["eval_loss"] = round(float(eval_loss), 6)
        metrics["eval_loss_first"] = round(float(done[0]), 6) if done else metrics["eval_loss"]
        best = trainer.state.best_metric
        if config.keep_best and best is not None and trainer.state.best_model_checkpoint:
            # The adapter that is saved is the best evaluation's, so its loss is the one to show.
            if at_end:
                metrics["eval_loss_last"] = metrics["eval_loss"]
            metrics["eval_loss"] = round(float(best), 6)
            metrics["best_step"] = int(trainer.state.best_model_checkpoint.rsplit("-", 1)[-1])
        start = [p["eval_loss"] for p in curve if p["step"] == 0 and "eval_loss" in p]
        if start:
            metrics["eval_loss_start"] = start[0]  # the base model, before any LoRA step
    last_losses = [p["loss"] for p in curve if "loss" in p]
    if last_losses:
        metrics["train_loss_last"] = last_losses[-1]
    trained_tokens, input_tokens = _all_reduce_sum(
        [trainer.trained_tokens, trainer.input_tokens], args.device
    )
    metrics.update(
        tokens_trained=trained_tokens,
        tokens_input=input_tokens,
        train_runtime_s=round(runtime, 3),
        # Throughput of this session only (a resumed run counted some tokens before).
        tokens_per_s=round((input_tokens - counted_before) / runtime, 1) if runtime > 0 else 0.0,
    )
    status = "cancelled" if cancelled else "succeeded"
    global_step, total_steps = int(trainer.state.global_step), int(trainer.state.max_steps)
    info: dict[str, Any] = {
        "status": status,
        "base_model": config.base_model,
        "seed": config.seed,
        "config": config.to_dict(),
        "data": {
            "train_sha256": file_sha256(train_path),
            "val_sha256": file_sha256(val_path) if val_path.is_file() else "",
            "n_train_records": len(train_records),
            "n_val_records": len(val_records),
            "n_train_used": len(train_set),
            "n_dropped_too_long": fit_counts["dropped_too_long"],
            "n_shortened_background": fit_counts["shortened_background"],
            "n_cut_at_cutoff": fit_counts["cut_at_cutoff"],
        },
        "git_commit": _git_commit(),
        "device": dataclasses.asdict(device),
        "precision": dataclasses.asdict(precision),
        "world_size": world_size,
        "trainable_params": int(trainable),
        "trained_token_rows": role_rows,
        "total_params": int(total),
        "global_step": global_step,
        "total_steps": total_steps,
        "resumed_from": resumed_from or "",
        "loss_curve": curve,
        "metrics": metrics,
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if not cancelled:
        trainer.save_model(str(out))  # PEFT adapter; rank 0 only (DeepSpeed gathers weights)
    if trainer.is_world_process_zero():
        out.mkdir(parents=True, exist_ok=True)
        if not cancelled:
            tokenizer.save_pretrained(str(out))
        (out / RUN_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return TrainResult(
        status=status,
        output_dir=str(out),
        global_step=global_step,
        total_steps=total_steps,
        loss_curve=curve,
        metrics=metrics,
        info=info,
        model=trainer.model,
    )
