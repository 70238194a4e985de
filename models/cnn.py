"""A convolutional network built from scratch, every design choice a config key."""

from __future__ import annotations

from torch import nn

from models.mnist import SIDE
from models.registry import Config, ConfigError, Param, register_model

POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


def conv_output(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def feature_side(cfg: Config) -> int:
    """Side of the last feature map, or < 1 when the config shrinks 28x28 to nothing."""
    side, padding = SIDE, padding_of(cfg)
    for _ in cfg["channels"]:
        for _ in range(cfg["convs_per_block"]):
            side = conv_output(side, cfg["kernel_size"], cfg["stride"], padding)
        if cfg["pooling"] != "none":
            side //= 2
    return side


def padding_of(cfg: Config) -> int:
    return cfg["kernel_size"] // 2 if cfg["padding"] == "same" else 0


def check(cfg: Config) -> None:
    if not cfg["channels"] or any(c < 1 for c in cfg["channels"]):
        raise ConfigError(f"cnn: channels must be positive integers, got {cfg['channels']}")
    for key in ("kernel_size", "stride", "convs_per_block", "hidden"):
        if cfg[key] < 1:
            raise ConfigError(f"cnn: {key} must be >= 1, got {cfg[key]}")
    if not 0 <= cfg["dropout"] < 1:
        raise ConfigError(f"cnn: dropout must be in [0, 1), got {cfg['dropout']}")
    if feature_side(cfg) < 1:
        raise ConfigError(
            f"cnn: kernel_size={cfg['kernel_size']}, stride={cfg['stride']}, padding={cfg['padding']} and "
            f"pooling={cfg['pooling']} over {len(cfg['channels'])} blocks shrink 28x28 to nothing")


def conv_block(cin: int, cout: int, cfg: Config) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(cfg["convs_per_block"]):
        layers.append(nn.Conv2d(cin if i == 0 else cout, cout, cfg["kernel_size"], cfg["stride"],
                                padding_of(cfg), bias=not cfg["batch_norm"]))
        if cfg["batch_norm"]:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    if cfg["pooling"] != "none":
        layers.append(POOLS[cfg["pooling"]](2))
    if cfg["dropout"]:
        layers.append(nn.Dropout2d(cfg["dropout"] / 2))
    return nn.Sequential(*layers)


@register_model(
    "cnn",
    params={
        "channels": Param((16, 32), "output channels of each conv block (one block per entry)", ge=1, le=4096),
        "convs_per_block": Param(2, "convolutions in each block", ge=1, le=8),
        "kernel_size": Param(3, "side of every conv kernel, pixels", ge=1, le=27),
        "stride": Param(1, "stride of every conv", ge=1, le=4),
        "padding": Param("same", "same keeps a block's input size before pooling; valid pads nothing",
                         choices=("same", "valid")),
        "pooling": Param("max", "2x2 pooling after each block", choices=("max", "avg", "none")),
        "batch_norm": Param(True, "batch norm after each conv"),
        "dropout": Param(0.3, "dropout before the head (half of it after each block)", ge=0, lt=1),
        "hidden": Param(256, "width of the MLP head's hidden layer", ge=1, le=65536),
    },
    check=check,
    cpu_bf16=True,
    gpu_share=0.25,
    summary="CNN from scratch: conv-BN-ReLU blocks with pooling, dropout and an MLP head",
)
def build_cnn(cfg: Config) -> nn.Module:
    widths = (1, *cfg["channels"])
    blocks = [conv_block(cin, cout, cfg) for cin, cout in zip(widths, widths[1:], strict=False)]
    flat = widths[-1] * feature_side(cfg) ** 2
    return nn.Sequential(
        *blocks,
        nn.Flatten(),
        nn.Linear(flat, cfg["hidden"]),
        nn.ReLU(inplace=True),
        nn.Dropout(cfg["dropout"]),
        nn.Linear(cfg["hidden"], 10),
    )
