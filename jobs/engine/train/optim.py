"""Optimizer and learning-rate schedule from the run config."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def param_groups(model: nn.Module, config: dict[str, Any]) -> list[dict[str, Any]]:
    """Trainable parameters, grouped by the model when it asks for it (pre-trained layers at a smaller lr)."""
    if hasattr(model, "param_groups"):
        groups = model.param_groups(config["lr"])
    else:
        groups = [{"params": list(model.parameters()), "lr": config["lr"]}]
    groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in groups]
    return [g for g in groups if g["params"]]


def make_optimizer(groups: list[dict[str, Any]], config: dict[str, Any], device: torch.device | None = None,
                   static: bool = False) -> torch.optim.Optimizer:
    """On CUDA, and on the static step (jobs/engine/train/static_step.py), the fused kernels: one launch per step
    instead of a dozen per parameter group. A captured step also needs AdamW's state on the device (`capturable`)."""
    cuda = device is not None and device.type == "cuda"
    fused = {"fused": True} if cuda or static else {}
    if config["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=config["lr"], momentum=config["momentum"],
                               nesterov=config["nesterov"] and config["momentum"] > 0,
                               weight_decay=config["weight_decay"], **fused)
    capturable = {"capturable": True} if cuda and static else {}
    return torch.optim.AdamW(groups, lr=config["lr"], weight_decay=config["weight_decay"], **fused, **capturable)


def make_schedule(optimizer: torch.optim.Optimizer, config: dict[str, Any], total_steps: int,
                  cycle_momentum: bool = True) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per batch, so that one-cycle warm-up works at any epoch count.

    `cycle_momentum=False` keeps Adam's beta1 / SGD's momentum constant: a captured step cannot cycle them, since
    the fused kernels take them as host floats that a CUDA graph freezes at capture."""
    total_steps = max(total_steps, 1)
    if config["schedule"] == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total_steps,
            pct_start=0.15 if total_steps > 20 else 0.3, cycle_momentum=cycle_momentum)
    if config["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def lr_table(group_lrs: list[float], config: dict[str, Any], total_steps: int) -> torch.Tensor:
    """[total_steps + 1, groups]: each group's learning rate at every step, as `make_schedule` sets it.

    A captured step reads its learning rate from this table on the device instead of a scheduler on the host."""
    dummy = torch.optim.SGD([{"params": [torch.zeros(1)], "lr": lr} for lr in group_lrs], lr=group_lrs[0])
    schedule = make_schedule(dummy, config, total_steps, cycle_momentum=False)
    rows = [[float(g["lr"]) for g in dummy.param_groups]]
    for _ in range(max(total_steps, 1)):
        dummy.step()  # the scheduler warns when it is stepped before the optimizer
        schedule.step()
        rows.append([float(g["lr"]) for g in dummy.param_groups])
    return torch.tensor(rows, dtype=torch.float32)
