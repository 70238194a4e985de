"""Fake ImageNet weights for the tests: the file names and tensor shapes torchvision expects, random values.

They are written under the session's private TORCH_HOME, which conftest's pytest_configure sets before any test
module is imported: the session's local Ray (`ray_local`) copies the driver's environment into its workers when
it starts, so a TORCH_HOME set later would never reach the smoke runs.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import AlexNet_Weights, ResNet18_Weights, VGG16_Weights, WeightsEnum, alexnet, resnet18, vgg16

TORCH_HOME = Path(os.environ["TORCH_HOME"])

NETWORKS: dict[str, tuple[Callable[[], nn.Module], WeightsEnum]] = {
    "vgg16": (vgg16, VGG16_Weights.IMAGENET1K_V1),
    "alexnet": (alexnet, AlexNet_Weights.IMAGENET1K_V1),
    "resnet18": (resnet18, ResNet18_Weights.IMAGENET1K_V1),
}


def expected_file(name: str, torch_home: Path = TORCH_HOME) -> Path:
    """Where torch.hub caches the weights: <TORCH_HOME>/hub/checkpoints/<the file name in the weights URL>."""
    return torch_home / "hub" / "checkpoints" / Path(urlparse(NETWORKS[name][1].url).path).name


def fake_state(name: str) -> dict[str, torch.Tensor]:
    """The network's tensor names and shapes (read on the meta device: no memory, no init) filled with small
    random values, randn * sqrt(1 / fan_in) with zero-mean filters, so that activations stay of order one through
    the frozen stack as with trained weights: the smoke runs stay finite. Random features carry too little for a
    1-epoch run to learn from, so the smoke runs check loading and freezing, not accuracy."""
    with torch.device("meta"):
        shapes = {key: (value.shape, value.dtype) for key, value in NETWORKS[name][0]().state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, (shape, dtype) in shapes.items():
        if len(shape) > 1:  # conv and linear weights
            weight = torch.randn(shape, generator=generator)
            weight -= weight.mean(dim=tuple(range(1, len(shape))), keepdim=True)
            state[key] = weight * math.sqrt(1 / math.prod(shape[1:]))
        elif key.endswith(("running_var", "weight")):  # batch-norm scales and variances
            state[key] = torch.ones(shape, dtype=dtype)
        else:  # biases, running means, num_batches_tracked
            state[key] = torch.zeros(shape, dtype=dtype)
    return state


@functools.cache
def fake_weights(name: str) -> Path:
    """Write the fake state dict where torch.hub caches the real one, once per session; returns its path."""
    path = expected_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(fake_state(name), path)
    return path
