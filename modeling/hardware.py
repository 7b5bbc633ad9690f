"""The hardware a run uses and the numeric format that follows from it (training and generation).

Pure core: no Django. One rule for both: bf16 on compute capability >= 8.0 (Ampere and newer),
fp16 on older GPUs (V100 = sm_70, where ``torch.cuda.is_bf16_supported()`` is True only through
slow emulation), fp32 on CPU. SDPA attention everywhere (FlashAttention-2 needs sm_80+).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = [
    "DeviceInfo",
    "Precision",
    "choose_precision",
    "detect_device",
    "generation_dtype",
    "world_info",
]


@dataclass(frozen=True)
class DeviceInfo:
    """What the training process runs on; `capability` is the CUDA compute capability."""

    kind: str  # "cpu" or "cuda"
    name: str = ""
    capability: tuple[int, int] | None = None
    count: int = 0
    total_memory_gb: float = 0.0


@dataclass(frozen=True)
class Precision:
    """Numeric format and attention kernel for a device."""

    name: str  # fp32, fp16 or bf16
    torch_dtype: str  # dtype the frozen base weights are loaded in
    fp16: bool  # mixed precision with dynamic loss scaling (GradScaler)
    bf16: bool
    tf32: bool
    attn_implementation: str
    pad_to_multiple_of: int | None
    reason: str


def detect_device() -> DeviceInfo:
    """The local accelerator, if any."""
    import torch

    if not torch.cuda.is_available():
        return DeviceInfo(kind="cpu", name="cpu", count=0)
    props = torch.cuda.get_device_properties(0)
    return DeviceInfo(
        kind="cuda",
        name=props.name,
        capability=(props.major, props.minor),
        count=torch.cuda.device_count(),
        total_memory_gb=round(props.total_memory / 2**30, 1),
    )


def choose_precision(device: DeviceInfo, requested: str = "auto") -> Precision:
    """bf16 on Ampere and newer, fp16 + loss scaling on older GPUs (V100 = sm_70), fp32 on CPU.

    SDPA attention everywhere: FlashAttention-2 needs sm_80+, so it is never chosen on V100, and
    PyTorch's SDPA picks its own memory-efficient kernel on older GPUs.
    """
    gpu = device.kind == "cuda"
    bf16_ok = gpu and device.capability is not None and device.capability >= (8, 0)
    if requested == "auto":
        if not gpu:
            requested, reason = "fp32", "CPU: half precision is slow or unsupported in CPU matmuls"
        elif bf16_ok:
            requested, reason = "bf16", f"{device.name} (sm_{_sm(device)}) supports bf16"
        else:
            requested = "fp16"
            reason = f"{device.name} (sm_{_sm(device)}) has no bf16: fp16 with loss scaling"
    else:
        reason = "requested"
        if requested == "bf16" and not bf16_ok:
            raise ValueError(f"bf16 needs a GPU with compute capability >= 8.0, not {device}")
        if requested == "fp16" and not gpu:
            raise ValueError("fp16 training needs a GPU")
    return Precision(
        name=requested,
        torch_dtype={"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}[requested],
        fp16=requested == "fp16",
        bf16=requested == "bf16",
        tf32=bf16_ok,
        attn_implementation="sdpa",
        # Tensor cores want dimensions in multiples of 8; on CPU extra padding is pure waste.
        pad_to_multiple_of=8 if gpu else None,
        reason=reason,
    )


def _sm(device: DeviceInfo) -> str:
    return "".join(map(str, device.capability)) if device.capability else "?"


def world_info() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from the torchrun environment; (0, 0, 1) otherwise."""
    return (
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("LOCAL_RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
    )


def generation_dtype(device: torch.device, requested: str = "auto") -> torch.dtype:
    """The dtype to decode in: `choose_precision`'s rule for the GPU `device`, fp32 on CPU."""
    import torch

    names = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if requested != "auto":
        if requested not in names:
            raise ValueError(f"dtype {requested!r}: expected auto, {', '.join(names)}")
        return names[requested]
    if device.type != "cuda":
        return torch.float32
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    info = DeviceInfo(kind="cuda", name=props.name, capability=(props.major, props.minor), count=1)
    return names[choose_precision(info).name]
