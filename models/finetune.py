"""VGG16 and AlexNet fine-tuned from ImageNet: one wrapper for both, differing only in their torchvision entries.

The loop feeds MNIST-normalised grey [B, 1, 28, 28]; an input adapter turns that into what ImageNet networks
were trained on (3 channels, ImageNet normalisation, at least the size their feature extractor accepts) on the
device, as batched tensor ops. The last classifier layer is built with 10 outputs; all else loads ImageNet.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import AlexNet_Weights, VGG16_Weights, WeightsEnum, alexnet, vgg16

from models.mnist import MEAN as MNIST_MEAN
from models.mnist import NUM_CLASSES
from models.mnist import STD as MNIST_STD
from models.pretrained import assets_check, check_lr_scale, load_imagenet, lr_groups
from models.registry import Config, ConfigError, Param, register_model

MAX_INPUT = 224  # ImageNet's own resolution: upsampling a 28px digit further only costs time


@dataclass(frozen=True)
class Family:
    constructor: Callable[..., nn.Module]  # a torchvision builder with .features and .classifier
    weights: WeightsEnum


FAMILIES = {"vgg16": Family(vgg16, VGG16_Weights.IMAGENET1K_V1),
            "alexnet": Family(alexnet, AlexNet_Weights.IMAGENET1K_V1)}


def square(value: int | tuple[int, ...]) -> int:
    """One side of a layer's size argument (these networks use square kernels, strides and paddings)."""
    return value[0] if isinstance(value, tuple) else value


def output_side(layer: nn.Module, side: int) -> int:
    """Side of a square map after one conv or max-pool (PyTorch's formula), else unchanged."""
    if side < 1 or not isinstance(layer, nn.Conv2d | nn.MaxPool2d):
        return side  # an empty map stays empty, whatever padding follows
    kernel, stride, padding, dilation = (square(getattr(layer, key))
                                         for key in ("kernel_size", "stride", "padding", "dilation"))
    span = side + 2 * padding - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    return (-(-span // stride) if getattr(layer, "ceil_mode", False) else span // stride) + 1


@functools.cache
def min_input_size(name: str) -> int:
    """Smallest input side for which the feature extractor leaves at least 1x1 (VGG16: 32, AlexNet: 63).
    Built on the meta device: no memory, no init cost, so the CLI can check configs instantly."""
    with torch.device("meta"):
        features = FAMILIES[name].constructor().features
    for size in range(1, MAX_INPUT + 1):
        side = size
        for layer in features:
            side = output_side(layer, side)
        if side >= 1:
            return size
    raise RuntimeError(f"{name}: no input up to {MAX_INPUT}px leaves a feature map")


def checker(name: str) -> Callable[[Config], None]:
    def check(cfg: Config) -> None:
        smallest, size = min_input_size(name), cfg["input_size"]
        if size != 0 and not smallest <= size <= MAX_INPUT:
            raise ConfigError(f"{name}: input_size={size} is outside {smallest}..{MAX_INPUT} (below {smallest} its "
                              f"feature extractor leaves nothing); 0 picks {smallest}")
        check_lr_scale(name, cfg)
    return check


class ImageNetInput(nn.Module):
    """MNIST-normalised grey [B, 1, 28, 28] -> ImageNet-normalised RGB [B, 3, S, S] in two batched ops.

    Undoing MNIST's normalisation and applying ImageNet's per channel is one affine map per channel,
    x * scale_c + shift_c, and bilinear resizing commutes with it (its weights sum to 1), so resizing the single
    grey channel first is exact and three times cheaper.
    """

    def __init__(self, size: int, weights: WeightsEnum) -> None:
        super().__init__()
        self.size = size
        preset = weights.transforms()  # ImageNet mean/std as torchvision trained with them
        mean, std = torch.tensor(preset.mean).view(1, 3, 1, 1), torch.tensor(preset.std).view(1, 3, 1, 1)
        self.register_buffer("scale", MNIST_STD / std, persistent=False)
        self.register_buffer("shift", (MNIST_MEAN - mean) / std, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return x * self.scale + self.shift


class FineTuned(nn.Module):
    def __init__(self, name: str, cfg: Config) -> None:
        super().__init__()
        family = FAMILIES[name]
        self.adapter = ImageNetInput(cfg["input_size"] or min_input_size(name), family.weights)
        self.net = family.constructor(num_classes=NUM_CLASSES)
        self.head = self.net.classifier[-1]
        self.pretrained = cfg["weights"] == "imagenet"
        self.backbone_lr_scale = cfg["backbone_lr_scale"]
        if self.pretrained:
            load_imagenet(name, self.net, family.weights, head=f"classifier.{len(self.net.classifier) - 1}")
            # Only pre-trained features are worth freezing: with weights=none everything trains from scratch.
            if cfg["freeze_features"]:
                self.net.features.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.adapter(x))

    def param_groups(self, lr: float) -> list[dict]:
        return lr_groups(self, [self.head] if self.pretrained else [self], lr, self.backbone_lr_scale)


def register(name: str, summary: str, gpu_share: float) -> None:
    register_model(
        name,
        params={
            "weights": Param("imagenet", "ImageNet weights, or none to train from scratch",
                             choices=("imagenet", "none")),
            "freeze_features": Param(True, "freeze the pre-trained feature extractor"),
            "backbone_lr_scale": Param(0.1, "lr of pre-trained layers as a fraction of lr", ge=0, le=1),
            "input_size": Param(0, "side the digits are resized to on the device, pixels; 0 = the smallest that "
                                   "works", ge=0, le=MAX_INPUT),
        },
        cpu_bf16=True,
        gpu_share=gpu_share,
        check=checker(name),
        summary=summary,
        assets=assets_check(name, FAMILIES[name].weights),
    )(functools.partial(FineTuned, name))


register("vgg16", "VGG16 (torchvision) fine-tuned from ImageNet: grey 28px upsampled to 3x32px, new 10-way head",
         gpu_share=1.0)
register("alexnet", "AlexNet (torchvision) fine-tuned from ImageNet: grey 28px upsampled to 3x63px, new 10-way head",
         gpu_share=0.5)
