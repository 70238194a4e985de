"""How large one run's checkpoint is, from its architecture and config alone: the parameters are counted on torch's
meta device, which allocates nothing, so vgg16's 134 M parameters cost no memory and no ImageNet weights file."""

from __future__ import annotations

from typing import Any

import torch

import models

BYTES_PER_PARAMETER = 4  # float32 weights, as the loop saves them (mixed precision keeps float32 masters)


def parameter_count(model: str, config: dict[str, Any]) -> int:
    """Parameters of MODEL built with CONFIG (ImageNet weights or not: the same shapes), without allocating them."""
    config = {**config, **({"weights": "none"} if "weights" in config else {})}
    with torch.device("meta"):
        return models.count_parameters(models.build(model, config))


def optimizer_copies(config: dict[str, Any]) -> int:
    """Tensors the size of the weights that the optimizer keeps per parameter: AdamW two (first and second
    moments), SGD one with momentum (its buffer), none without."""
    if config.get("optimizer", "adamw") == "sgd":
        return 1 if config.get("momentum", 0) else 0
    return 2


def weights_bytes(model: str, config: dict[str, Any]) -> int:
    """Bytes of the weights alone: a finished run's checkpoint (jobs/engine/train/finished_checkpoint.py)."""
    return parameter_count(model, config) * BYTES_PER_PARAMETER


def checkpoint_bytes(model: str, config: dict[str, Any]) -> int:
    """Bytes of a running run's checkpoint: its weights and the optimizer's state (buffers and the summary are
    small beside them)."""
    return weights_bytes(model, config) * (1 + optimizer_copies(config))
