"""torchvision's Faster R-CNN sized for MNIST canvases (task "detection": see jobs/engine/tasks/detection.py).

Everything COCO-sized is scaled down: images stay at the canvas size (no upscaling to 800 px), anchors match
digit ink boxes (12-34 px, taller than wide: torchvision's aspect ratio is height/width), and the RPN and RoI
sampling sizes are small, since torchvision's defaults (2000 proposals, 512 RoIs per image) are slow on a CPU
for canvases holding at most a few digits. Images are 1-channel; ImageNet backbones see them copied to RGB.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import MobileNet_V3_Large_Weights, ResNet18_Weights, mobilenet_v3_large, resnet18
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import _mobilenet_extractor, _resnet_fpn_extractor
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign

from models.pretrained import check_available, check_lr_scale, load_imagenet, lr_groups
from models.registry import Config, ConfigError, Param, register_model

NAME = "faster_rcnn"
NUM_CLASSES = 11  # background + digits 0-9 (label = digit + 1)
WEIGHTS = {"resnet18_fpn": ResNet18_Weights.IMAGENET1K_V1, "mobilenet_v3_fpn": MobileNet_V3_Large_Weights.IMAGENET1K_V1}
# Grey statistics: MNIST's from scratch, the mean of ImageNet's RGB statistics for ImageNet weights.
GREY_STATS = {"none": (0.1307, 0.3081), "imagenet": (0.449, 0.226)}
# RoIs span 2-4 cells of a stride-8 map, so 7x7 bins are already finer than the map: more than one sample per
# bin buys nothing and doubles torchvision's single-threaded CPU roi_align backward.
SAMPLING_RATIO = 1
POSITIVE = ("canvas_size", "max_digits", "width", "representation_size", "rpn_batch_size_per_image",
            "rpn_pre_nms_top_n", "rpn_post_nms_top_n", "box_batch_size_per_image", "box_detections_per_img")


def check(cfg: Config) -> None:
    for key in POSITIVE:
        if cfg[key] < 1:
            raise ConfigError(f"{NAME}: {key} must be >= 1, got {cfg[key]}")
    if not 0 < cfg["scale_min"] <= cfg["scale_max"]:
        raise ConfigError(f"{NAME}: need 0 < scale_min <= scale_max, got {cfg['scale_min']} and {cfg['scale_max']}")
    if round(28 * cfg["scale_max"]) > cfg["canvas_size"]:
        raise ConfigError(f"{NAME}: a digit at scale_max={cfg['scale_max']} ({round(28 * cfg['scale_max'])} px) "
                          f"does not fit canvas_size={cfg['canvas_size']}")
    if cfg["canvas_size"] < 28:
        raise ConfigError(f"{NAME}: canvas_size must be >= 28 (plain digits are pasted at its centre), "
                          f"got {cfg['canvas_size']}")
    if cfg["digits_per_canvas"] <= 0:
        raise ConfigError(f"{NAME}: digits_per_canvas must be > 0, got {cfg['digits_per_canvas']}")
    if not cfg["anchor_sizes"] or min(cfg["anchor_sizes"]) <= 0:
        raise ConfigError(f"{NAME}: anchor_sizes must be positive pixel sizes, got {cfg['anchor_sizes']}")
    if not cfg["aspect_ratios"] or min(cfg["aspect_ratios"]) <= 0:
        raise ConfigError(f"{NAME}: aspect_ratios (height/width) must be positive, got {cfg['aspect_ratios']}")
    if not 0 <= cfg["box_score_thresh"] < 1:
        raise ConfigError(f"{NAME}: box_score_thresh must be in [0, 1), got {cfg['box_score_thresh']}")
    if cfg["backbone"] == "small_cnn" and cfg["width"] % 8:
        raise ConfigError(f"{NAME}: width must be a multiple of 8 (GroupNorm with 8 groups), got {cfg['width']}")
    if cfg["backbone"] == "small_cnn" and cfg["weights"] == "imagenet":
        raise ConfigError(f"{NAME}: backbone=small_cnn has no ImageNet weights; use resnet18_fpn or "
                          "mobilenet_v3_fpn, or weights=none")
    if not 0 <= cfg["trainable_layers"] <= 5:
        raise ConfigError(f"{NAME}: trainable_layers must be in [0, 5], got {cfg['trainable_layers']}")
    check_lr_scale(NAME, cfg)


def assets(cfg: Config) -> None:
    if cfg["weights"] == "imagenet" and cfg["backbone"] in WEIGHTS:
        check_available(NAME, WEIGHTS[cfg["backbone"]])


def conv(cin: int, cout: int, stride: int) -> list[nn.Module]:
    # GroupNorm, not BatchNorm: detection batches are a few canvases per worker, and eval needs no running stats.
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.GroupNorm(8, cout), nn.ReLU(inplace=True)]


def small_cnn(width: int) -> nn.Module:
    """Five 3x3 convs down to stride 8 (receptive field 39 px, a whole digit): an 88 px padded canvas gives an
    11x11 map where a digit spans 2-4 cells. The stem strides at once: full-resolution convs dominate on a CPU."""
    w = width
    net = nn.Sequential(*conv(1, w, 2), *conv(w, 2 * w, 2), *conv(2 * w, 2 * w, 1), *conv(2 * w, 4 * w, 2),
                        *conv(4 * w, 4 * w, 1))
    net.out_channels = 4 * w
    return net


class GreyToRgb(nn.Module):
    """ImageNet backbones want 3 channels: a grey image copied into each gives the RGB kernels' own response."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body, self.out_channels = body, body.out_channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.body(x.expand(-1, 3, -1, -1))


def fpn_backbone(cfg: Config) -> nn.Module:
    pretrained = cfg["weights"] == "imagenet"
    # Frozen BN keeps ImageNet's statistics (torchvision's choice); from scratch BN must learn its own.
    norm = FrozenBatchNorm2d if pretrained else nn.BatchNorm2d
    layers = cfg["trainable_layers"] if pretrained else 5  # freezing random layers would make no sense
    if cfg["backbone"] == "resnet18_fpn":
        net = resnet18(norm_layer=norm)
        if pretrained:
            load_imagenet(NAME, net, WEIGHTS["resnet18_fpn"], head="fc")
        # Layers 1-3 (strides 4, 8, 16): layer4's stride 32 leaves a 3x3 map of an 84 px canvas.
        body = _resnet_fpn_extractor(net, layers, returned_layers=[1, 2, 3])
    else:
        net = mobilenet_v3_large(norm_layer=norm)
        if pretrained:
            load_imagenet(NAME, net, WEIGHTS["mobilenet_v3_fpn"], head="classifier")
        # Stages 2-4 (strides 8, 16, 32) instead of torchvision's 16-32, which is far too coarse for digits.
        body = _mobilenet_extractor(net, True, layers if pretrained else 6, returned_layers=[2, 3, 4])
    return GreyToRgb(body)


class CanvasTransform(GeneralizedRCNNTransform):
    """torchvision's transform for a batch of canvases that already have the model's size: no resize.

    torchvision normalises, resizes (a bilinear resample even at scale 1), rescales the boxes and pads image by
    image, with small host-to-device copies for each: ~11 ms of host work per 16 canvases on a CPU, kernel
    launches and copies on a GPU. Here the batch is normalised and padded to the stride in one op each; images of
    other sizes take torchvision's own path."""

    def forward(self, images: torch.Tensor | list[torch.Tensor],
                targets: list[dict[str, torch.Tensor]] | None = None) -> tuple[ImageList, list | None]:
        size = self.min_size[-1]
        if not all(tuple(image.shape[-2:]) == (size, size) for image in images):
            return super().forward(list(images), targets)
        batch = images if isinstance(images, torch.Tensor) else torch.stack(list(images))
        (mean,), (std,) = self.image_mean, self.image_std  # grey images: one channel
        padding = -size % self.size_divisible
        batch = F.pad((batch - mean) / std, (0, padding, 0, padding))
        return ImageList(batch, [(size, size)] * len(batch)), targets

    def postprocess(self, result: list[dict[str, torch.Tensor]], image_shapes: list[tuple[int, int]],
                    original_image_sizes: list[tuple[int, int]]) -> list[dict[str, torch.Tensor]]:
        if self.training or list(image_shapes) == list(original_image_sizes):
            return result  # boxes are already in the canvas's pixels
        return super().postprocess(result, image_shapes, original_image_sizes)


class DigitFasterRCNN(FasterRCNN):
    """FasterRCNN plus the loop's `param_groups` hook: pre-trained backbone layers at lr * backbone_lr_scale.

    `forward` is torchvision's without its per-image checks of the targets: our boxes are ink boxes, never
    degenerate by construction, and each check is a host sync per image on a GPU. It also takes a [B, 1, H, W]
    batch as well as a list of images."""

    pretrained: bool = False
    backbone_lr_scale: float = 1.0

    def forward(self, images: torch.Tensor | list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None
                ) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        if self.training and targets is None:
            raise ValueError("targets are needed in training mode")
        original_sizes = [(int(image.shape[-2]), int(image.shape[-1])) for image in images]
        batch, targets = self.transform(images, targets)
        features = self.backbone(batch.tensors)
        if isinstance(features, torch.Tensor):
            features = OrderedDict([("0", features)])
        proposals, proposal_losses = self.rpn(batch, features, targets)
        detections, detector_losses = self.roi_heads(features, proposals, batch.image_sizes, targets)
        if self.training:
            return {**detector_losses, **proposal_losses}
        return self.transform.postprocess(detections, batch.image_sizes, original_sizes)

    def param_groups(self, lr: float) -> list[dict]:
        if not self.pretrained:
            return [{"params": list(self.parameters()), "lr": lr}]
        # The FPN, RPN and box heads are new; only the ImageNet body (GreyToRgb > BackboneWithFPN > body) is not.
        return lr_groups(self, [self.backbone.body.fpn, self.rpn, self.roi_heads], lr, self.backbone_lr_scale)


@register_model(
    NAME,
    params={
        "backbone": Param("small_cnn", "feature extractor", choices=("small_cnn", "resnet18_fpn", "mobilenet_v3_fpn")),
        "weights": Param("none", "ImageNet weights for an FPN backbone, or none", choices=("none", "imagenet")),
        "width": Param(32, "channels of the small CNN backbone (a multiple of 8)", ge=8, le=1024),
        "trainable_layers": Param(3, "pre-trained backbone stages left trainable", ge=0, le=5),
        "backbone_lr_scale": Param(0.1, "lr of pre-trained layers as a fraction of lr", ge=0, le=1),
        "canvas_size": Param(84, "side of a canvas, pixels", ge=28, le=1024),
        "max_digits": Param(3, "most digits on one canvas", ge=1, le=32),
        "scale_min": Param(0.8, "smallest digit scale on a canvas", gt=0, le=8),
        "scale_max": Param(1.6, "largest digit scale on a canvas", gt=0, le=8),
        "digits_per_canvas": Param(2.0, "mean digits per canvas (sets how many canvases a split makes)", gt=0, le=32),
        "anchor_sizes": Param((12, 20, 32), "anchor box sides, pixels", gt=0, le=1024),
        "aspect_ratios": Param((1.0, 2.0), "anchor height/width ratios", gt=0, le=10),
        "representation_size": Param(256, "width of the box head", ge=1, le=8192),
        "rpn_batch_size_per_image": Param(64, "anchors sampled per image for the RPN loss", ge=1, le=4096),
        "rpn_pre_nms_top_n": Param(200, "proposals kept before NMS", ge=1, le=10000),
        "rpn_post_nms_top_n": Param(50, "proposals kept after NMS", ge=1, le=10000),
        "box_batch_size_per_image": Param(32, "RoIs sampled per image for the box loss", ge=1, le=4096),
        "box_detections_per_img": Param(10, "detections kept per canvas", ge=1, le=1000),
        "box_score_thresh": Param(0.01, "detections below this score are dropped", ge=0, lt=1),
    },
    check=check,
    task="detection",
    summary="Faster R-CNN (torchvision) on 84 px canvases of 1-3 digits; small CNN, ResNet-18 or MobileNetV3 + FPN",
    assets=assets,
)
def build_faster_rcnn(cfg: Config) -> nn.Module:
    if cfg["backbone"] == "small_cnn":
        backbone, maps, levels = small_cnn(cfg["width"]), ["0"], 1
    else:  # three FPN maps plus the 'pool' level the RPN also sees (RoIs are pooled from the three maps only)
        backbone, maps, levels = fpn_backbone(cfg), ["0", "1", "2"], 4
    # Every size on every level: the count of sizes is then free to tune (FPN usually takes one size per level).
    anchors = AnchorGenerator((tuple(cfg["anchor_sizes"]),) * levels, (tuple(cfg["aspect_ratios"]),) * levels)
    pool = MultiScaleRoIAlign(featmap_names=maps, output_size=7, sampling_ratio=SAMPLING_RATIO)
    size = cfg["representation_size"]
    mean, std = GREY_STATS[cfg["weights"]]
    top_n, post_n = cfg["rpn_pre_nms_top_n"], cfg["rpn_post_nms_top_n"]
    model = DigitFasterRCNN(
        backbone, num_classes=None, min_size=cfg["canvas_size"], max_size=cfg["canvas_size"],
        image_mean=[mean], image_std=[std], rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=top_n, rpn_pre_nms_top_n_test=top_n,
        rpn_post_nms_top_n_train=post_n, rpn_post_nms_top_n_test=post_n,
        rpn_batch_size_per_image=cfg["rpn_batch_size_per_image"], box_roi_pool=pool,
        box_head=TwoMLPHead(backbone.out_channels * 7 * 7, size), box_predictor=FastRCNNPredictor(size, NUM_CLASSES),
        box_batch_size_per_image=cfg["box_batch_size_per_image"],
        box_detections_per_img=cfg["box_detections_per_img"], box_score_thresh=cfg["box_score_thresh"],
        # Pad batches to the backbone's stride only (84 -> 88, not 96): the default 32 costs 19% more pixels.
        size_divisible=8 if cfg["backbone"] == "small_cnn" else 32)
    model.transform = CanvasTransform(model.transform.min_size, model.transform.max_size, [mean], [std],
                                      size_divisible=model.transform.size_divisible)
    model.pretrained, model.backbone_lr_scale = cfg["weights"] == "imagenet", cfg["backbone_lr_scale"]
    return model
