"""One eager training epoch and a model's placement: plain torch, no Ray, so that `make bench` times exactly what
the loop (jobs/engine/train/loop.py) runs, in a process that never imports Ray."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from jobs.engine.data.augment import memory_format
from jobs.engine.data.batches import batch_bounds
from jobs.engine.tasks import Task


def run_epoch(model: nn.Module, task: Task, optimizer: torch.optim.Optimizer,
              schedule: torch.optim.lr_scheduler.LRScheduler, indices: torch.Tensor, batch_size: int,
              grad_clip: float = 0.0) -> torch.Tensor:
    """One pass over `indices` in batches of `batch_size` (a remainder too small for every model folded into the
    last: jobs/engine/data/batches.py); returns the summed (not mean) loss, still on the device, so no sync per step."""
    loss_sum = torch.zeros((), device=indices.device)
    for begin, end in batch_bounds(len(indices), batch_size):
        batch = indices[begin:end]
        loss = task.loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        schedule.step()
        loss_sum += loss.detach() * len(batch)
    if indices.device.type == "cuda":
        torch.cuda.synchronize(indices.device)
    return loss_sum


def place(model: nn.Module, device: torch.device, cfg: dict[str, Any]) -> nn.Module:
    return model.to(device, memory_format=memory_format(cfg["channels_last"]))
