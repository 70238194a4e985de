"""Mixed precision policy: bf16 autocast on CUDA (no loss scaling needed), full fp32 on CPU."""

from __future__ import annotations

import contextlib

import torch


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type == "cuda":
        # No cast cache: a CUDA graph must not capture casts cached outside it (PyTorch's CUDA graph notes), and
        # our models use each weight once per forward, so the cache saves nothing.
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()
