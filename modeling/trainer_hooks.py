"""The Trainer glue of a training run: hooks for the caller, callbacks, token counting, RNG care.

Pure core: no Django; transformers and torch are imported inside the functions. `training.train`
wires these into a `transformers.Trainer`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from modeling.train_data import IGNORE_INDEX

__all__ = ["TOKEN_COUNTS_FILE", "TrainHooks"]


class TrainHooks(Protocol):
    """What a caller (the Django service) learns while rank 0 trains."""

    def on_log(self, point: dict[str, float]) -> None:
        """A new loss-curve point: {"step", "loss"} or {"step", "eval_loss"}."""

    def on_step(self, step: int, total_steps: int) -> bool:
        """Called after each optimizer step; return True to stop (cancel) cleanly."""
        return False


def _make_trainer_class() -> type:
    """A Trainer that also counts the tokens it trains on (import of transformers deferred)."""
    from transformers import Trainer

    class CountingTrainer(Trainer):  # type: ignore[misc]
        trained_tokens = 0  # positions with a label (the loss is computed on them)
        input_tokens = 0  # non-padding positions fed to the model

        def training_step(self, model: Any, inputs: dict[str, Any], *args: Any, **kw: Any) -> Any:
            inputs = dict(inputs)
            mask = inputs.pop("attention_mask")
            self.trained_tokens += int((inputs["labels"][:, 1:] != IGNORE_INDEX).sum())
            self.input_tokens += int(mask.sum())
            # Right padding under a causal mask: no real token can attend to the pads after it,
            # and pads carry no labels, so the padding mask changes nothing but the kernel. Without
            # it SDPA runs its causal fast path instead of materialising a batch x L x L mask.
            return super().training_step(model, inputs, *args, **kw)

    return CountingTrainer


def _make_hook_callback(hooks: TrainHooks | None, curve: list[dict[str, float]]) -> Any:
    """A TrainerCallback that feeds the loss curve and progress to `hooks` and honours cancel."""
    import torch
    import torch.distributed as dist
    from transformers import TrainerCallback

    class HookCallback(TrainerCallback):  # type: ignore[misc]
        cancelled = False

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if not state.is_world_process_zero or not logs:
                return
            for key in ("loss", "eval_loss"):
                if key in logs:
                    point = {"step": int(state.global_step), key: round(float(logs[key]), 6)}
                    curve.append(point)
                    if hooks is not None:
                        hooks.on_log(point)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            stop = False
            if state.is_world_process_zero and hooks is not None:
                stop = bool(hooks.on_step(int(state.global_step), int(state.max_steps)))
            if dist.is_available() and dist.is_initialized():
                # Every rank must stop at the same step, or DDP waits forever on the others.
                flag = torch.tensor([1 if stop else 0], device=args.device)
                dist.broadcast(flag, src=0)
                stop = bool(flag.item())
            if stop:
                self.cancelled = True
                control.should_training_stop = True
                control.should_save = True  # a checkpoint to --resume from

    return HookCallback()


TOKEN_COUNTS_FILE = "token_counts.json"


def _make_token_count_callback(trainer: Any) -> Any:
    """Saves the token counters into each checkpoint, so a resumed run keeps counting from there."""
    from transformers import TrainerCallback

    class TokenCountCallback(TrainerCallback):  # type: ignore[misc]
        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            counts = _all_reduce_sum([trainer.trained_tokens, trainer.input_tokens], args.device)
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and folder.is_dir():
                data = {"tokens_trained": counts[0], "tokens_input": counts[1]}
                (folder / TOKEN_COUNTS_FILE).write_text(json.dumps(data) + "\n")

    return TokenCountCallback()


def _all_reduce_sum(values: list[int], device: Any) -> list[int]:
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.long, device=device)
    dist.all_reduce(t)
    return [int(v) for v in t.tolist()]


@contextlib.contextmanager
def _rng_preserved() -> Iterator[None]:
    """Restore Python's, numpy's and torch's random state (CPU and GPUs) on exit."""
    import random

    import numpy as np
    import torch

    states = (random.getstate(), np.random.get_state(), torch.random.get_rng_state())
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
