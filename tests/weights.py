"""Fake ImageNet weights for the tests: the file names and tensor shapes torchvision expects, random values.

Importing this module points TORCH_HOME at a private temporary folder. It must happen while pytest collects the
test modules, before any test runs: the session's local Ray (conftest's `ray_local`) copies the driver's
environment into its workers when it starts, so a TORCH_HOME set later would never reach the smoke runs.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import AlexNet_Weights, ResNet18_Weights, VGG16_Weights, WeightsEnum, alexnet, resnet18, vgg16

TORCH_HOME = Path(tempfile.mkdtemp(prefix="archsweep-torch-home-"))
os.environ["TORCH_HOME"] = str(TORCH_HOME)
atexit.register(shutil.rmtree, TORCH_HOME, True)

NETWORKS: dict[str, tuple[Callable[[], nn.Module], WeightsEnum]] = {
    "vgg16": (vgg16, VGG16_Weights.IMAGENET1K_V1),
    "alexnet": (alexnet, AlexNet_Weights.IMAGENET1K_V1),
    "resnet18": (resnet18, ResNet18_Weights.IMAGENET1K_V1),
}


def expected_file(name: str, torch_home: Path = TORCH_HOME) -> Path:
    """Where torch.hub caches the weights: <TORCH_HOME>/hub/checkpoints/<the file name in the weights URL>."""
    return torch_home / "hub" / "checkpoints" / Path(urlparse(NETWORKS[name][1].url).path).name


@functools.cache
def fake_weights(name: str) -> Path:
    """Write the state dict of a randomly initialised torchvision network (1000 classes, RGB) once per session.

    torchvision's own init rather than plain noise: the frozen fake features must still carry enough signal for
    the smoke runs to learn, and its 0.01-std classifier init keeps the values small as real weights are.
    """
    path = expected_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    with torch.no_grad():
        state = NETWORKS[name][0]().state_dict()
    torch.save(state, path)
    return path
