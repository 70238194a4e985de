"""Mixed precision policy: bf16 autocast on CUDA (no loss scaling needed), full fp32 on CPU."""

from __future__ import annotations

import contextlib

import torch


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
