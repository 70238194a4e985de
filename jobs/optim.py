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


def make_optimizer(groups: list[dict[str, Any]], config: dict[str, Any]) -> torch.optim.Optimizer:
    if config["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=config["lr"], momentum=config["momentum"],
                               nesterov=config["nesterov"] and config["momentum"] > 0,
                               weight_decay=config["weight_decay"])
    return torch.optim.AdamW(groups, lr=config["lr"], weight_decay=config["weight_decay"])


def make_schedule(optimizer: torch.optim.Optimizer, config: dict[str, Any],
                  total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per batch, so that one-cycle warm-up works at any epoch count."""
    total_steps = max(total_steps, 1)
    if config["schedule"] == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total_steps,
            pct_start=0.15 if total_steps > 20 else 0.3)
    if config["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
