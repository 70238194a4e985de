"""Mixed precision policy (loop key `precision`: auto | bf16 | fp32): bf16 autocast where the hardware computes
bf16 natively and the model gains from it, fp32 elsewhere. Weights, optimizer state and losses stay fp32.

`auto` means bf16 on CUDA, and on a CPU with native bf16 (AVX512-BF16 or AMX) for the convolutional classifiers.
Measured on this project's 2-core AMD EPYC (avx512_bf16), one thread, training img/s fp32 -> bf16 (evaluation):
cnn (kernel 7, 32-64) 199 -> 377 (511 -> 1,097); default cnn 2,126 -> 3,124; resnet18 40 -> 73 (110 -> 227);
alexnet 107 -> 139; vgg16 31 -> 44. The ViT trains 20% slower there (192 -> 153: its layer norms and softmax
convert back and forth), so it stays fp32 on a CPU. A CPU without native bf16 emulates it, slower than fp32.
Detection trains in fp32 everywhere: its box regression and anchor matching want more than bf16's 8-bit mantissa.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

import models

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Linux reports the CPU's instruction sets in /proc/cpuinfo; elsewhere we cannot tell, so fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def resolve_precision(choice: str, device: torch.device, model: str) -> str:
    """What `precision` means for this model on this device: "bf16" or "fp32"."""
    if models.spec(model).task == "detection":
        return "fp32"
    if choice != "auto":
        return choice
    if device.type == "cuda":
        return "bf16"
    return "bf16" if models.spec(model).cpu_bf16 and cpu_has_native_bf16() else "fp32"


def autocast(device: torch.device, precision: str = "bf16") -> contextlib.AbstractContextManager:
    if precision != "bf16":
        return contextlib.nullcontext()
    # No cast cache: a CUDA graph must not capture casts cached outside it (PyTorch's CUDA graph notes), and our
    # models use each weight once per forward, so the cache saves nothing.
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)
