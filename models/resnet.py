"""torchvision's ResNet-18 with a stem for 28x28 grey digits, from scratch or from ImageNet weights.

ImageNet's stem (7x7 stride-2 conv, then a stride-2 max-pool) would shrink 28x28 to 7x7 before the first block;
a 3x3 stride-1 conv without max-pool keeps 28x28 there, as the CIFAR ResNets do.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from models.mnist import NUM_CLASSES
from models.pretrained import StateDict, assets_check, check_lr_scale, load_imagenet, lr_groups
from models.registry import Config, Param, register_model

WEIGHTS = ResNet18_Weights.IMAGENET1K_V1


def grey_stem(rgb: torch.Tensor, size: int = 3) -> torch.Tensor:
    """ImageNet's [64, 3, 7, 7] first-conv kernel -> [64, 1, size, size].

    Summing over RGB gives a grey image the response the RGB kernel gives that image copied into all three
    channels. The centre crop keeps the kernel's core (first-layer kernels are edge and blob detectors that hold
    most of their weight near the centre) and a small receptive field: the stem runs at stride 1 on a 28px
    digit, where a 7x7 footprint would blur the strokes the next layers expect as edges.
    """
    summed = rgb.sum(dim=1, keepdim=True)
    start = (summed.shape[-1] - size) // 2
    return summed[..., start:start + size, start:start + size].contiguous()


def convert_stem(state: StateDict) -> StateDict:
    return {**state, "conv1.weight": grey_stem(state["conv1.weight"])}


class GreyResNet18(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.net = resnet18(num_classes=NUM_CLASSES)
        self.net.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.net.maxpool = nn.Identity()
        self.pretrained = cfg["weights"] == "imagenet"
        self.backbone_lr_scale = cfg["backbone_lr_scale"]
        if self.pretrained:
            load_imagenet("resnet18", self.net, WEIGHTS, head="fc", convert=convert_stem)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def param_groups(self, lr: float) -> list[dict]:
        # The converted stem is only a rough start for its new input, so it learns at full rate with the new head.
        fresh = [self.net.conv1, self.net.bn1, self.net.fc] if self.pretrained else [self]
        return lr_groups(self, fresh, lr, self.backbone_lr_scale)


@register_model(
    "resnet18",
    params={
        "weights": Param("none", "from scratch, or ImageNet weights (RGB stem summed to grey)",
                         choices=("none", "imagenet")),
        "backbone_lr_scale": Param(0.1, "lr of pre-trained layers as a fraction of lr", ge=0, le=1),
    },
    cpu_bf16=True,
    gpu_share=0.5,
    check=lambda cfg: check_lr_scale("resnet18", cfg),
    summary="ResNet-18 (torchvision) with a 3x3 stride-1 grey stem; from scratch or ImageNet weights",
    assets=assets_check("resnet18", WEIGHTS),
)
def build_resnet18(cfg: Config) -> nn.Module:
    return GreyResNet18(cfg)
