"""Precision and attention are chosen from the hardware (fake device infos, no GPU needed)."""

from __future__ import annotations

import pytest

from modeling.training import DeviceInfo, choose_precision

V100 = DeviceInfo(kind="cuda", name="Tesla V100-SXM2-16GB", capability=(7, 0), count=8)
T4 = DeviceInfo(kind="cuda", name="Tesla T4", capability=(7, 5), count=1)
A100 = DeviceInfo(kind="cuda", name="NVIDIA A100-SXM4-80GB", capability=(8, 0), count=8)
CPU = DeviceInfo(kind="cpu", name="cpu")


def test_v100_trains_in_fp16_with_loss_scaling_and_sdpa() -> None:
    p = choose_precision(V100)
    assert (p.name, p.fp16, p.bf16, p.tf32) == ("fp16", True, False, False)
    assert p.torch_dtype == "float16"
    assert p.attn_implementation == "sdpa"
    assert p.pad_to_multiple_of == 8


def test_turing_without_bf16_also_gets_fp16() -> None:
    assert choose_precision(T4).name == "fp16"


def test_a100_trains_in_bf16_with_tf32() -> None:
    p = choose_precision(A100)
    assert (p.name, p.fp16, p.bf16, p.tf32) == ("bf16", False, True, True)
    assert p.torch_dtype == "bfloat16"
    assert p.attn_implementation == "sdpa"


def test_cpu_trains_in_fp32_without_padding_to_eight() -> None:
    p = choose_precision(CPU)
    assert (p.name, p.fp16, p.bf16, p.torch_dtype) == ("fp32", False, False, "float32")
    assert p.pad_to_multiple_of is None


def test_it_refuses_bf16_on_v100_and_fp16_on_cpu() -> None:
    with pytest.raises(ValueError, match="bf16"):
        choose_precision(V100, "bf16")
    with pytest.raises(ValueError, match="GPU"):
        choose_precision(CPU, "fp16")


def test_an_explicit_fp32_request_wins_on_a_gpu() -> None:
    p = choose_precision(A100, "fp32")
    assert (p.name, p.fp16, p.bf16, p.pad_to_multiple_of) == ("fp32", False, False, 8)
