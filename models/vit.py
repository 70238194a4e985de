"""A Vision Transformer from scratch, in the style of lucidrains/vit-pytorch: small and readable.

Patches are cut by a stride-`patch_size` convolution; pre-norm blocks use PyTorch's fused
`scaled_dot_product_attention`. Defaults follow "Better plain ViT baselines" (Beyer et al., 2022): fixed 2-D
sin-cos positions and mean pooling train better than learned positions and a [CLS] token on little data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.mnist import SIDE
from models.registry import Config, ConfigError, Param, register_model


def check(cfg: Config) -> None:
    patch, dim, heads = cfg["patch_size"], cfg["dim"], cfg["heads"]
    if patch < 1 or SIDE % patch:
        divisors = ", ".join(str(d) for d in range(1, SIDE + 1) if SIDE % d == 0)
        raise ConfigError(f"vit: patch_size={patch} does not divide the {SIDE}x{SIDE} image; choose one of {divisors}")
    for key in ("dim", "depth", "heads"):
        if cfg[key] < 1:
            raise ConfigError(f"vit: {key} must be >= 1, got {cfg[key]}")
    if dim % heads:
        raise ConfigError(f"vit: dim={dim} is not divisible by heads={heads} (each head gets dim/heads channels)")
    if cfg["pos_embedding"] == "sincos" and dim % 4:
        raise ConfigError(f"vit: pos_embedding=sincos needs dim divisible by 4 (sin and cos of x and y), got {dim}")
    if cfg["mlp_ratio"] <= 0:
        raise ConfigError(f"vit: mlp_ratio must be > 0, got {cfg['mlp_ratio']}")
    for key in ("dropout", "attn_dropout"):
        if not 0 <= cfg[key] < 1:
            raise ConfigError(f"vit: {key} must be in [0, 1), got {cfg[key]}")


def sincos_2d(side: int, dim: int, temperature: float = 10_000.0) -> torch.Tensor:
    """Fixed [side*side, dim] positions: a quarter of the channels each for sin(y), cos(y), sin(x), cos(x)."""
    y, x = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    omega = 1.0 / temperature ** (torch.arange(dim // 4) / max(dim // 4 - 1, 1))
    y, x = y.flatten()[:, None] * omega[None, :], x.flatten()[:, None] * omega[None, :]
    return torch.cat([y.sin(), y.cos(), x.sin(), x.cos()], dim=1)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.heads, self.attn_dropout = heads, attn_dropout
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        # [B, N, 3*D] -> three [B, heads, N, D/heads] tensors, the layout SDPA expects.
        q, k, v = self.qkv(self.norm(x)).view(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_dropout if self.training else 0.0)
        return self.out(x.transpose(1, 2).reshape(batch, tokens, dim))


def feed_forward(dim: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, dim), nn.Dropout(dropout))


class Block(nn.Module):
    """Pre-norm: the residual stream is never normalised, which keeps deep stacks stable without warm-up tricks."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        dim = cfg["dim"]
        self.attention = Attention(dim, cfg["heads"], cfg["dropout"], cfg["attn_dropout"])
        self.mlp = feed_forward(dim, int(dim * cfg["mlp_ratio"]), cfg["dropout"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(x)
        return x + self.mlp(x)


class ViT(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        dim, patch = cfg["dim"], cfg["patch_size"]
        side = SIDE // patch
        self.pool = cfg["pool"]
        self.patches = nn.Conv2d(1, dim, patch, stride=patch)
        if cfg["pos_embedding"] == "sincos":
            self.register_buffer("position", sincos_2d(side, dim)[None], persistent=False)
        else:
            self.position = nn.Parameter(torch.randn(1, side * side, dim) * 0.02)
        # The [CLS] token is itself learned, so it needs no position of its own.
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if self.pool == "cls" else None
        self.dropout = nn.Dropout(cfg["dropout"])
        self.blocks = nn.Sequential(*(Block(cfg) for _ in range(cfg["depth"])))
        self.norm = nn.LayerNorm(dim)
        # PyTorch's default init, as vit-pytorch: on MNIST it left chance in half the steps the usual
        # trunc-normal(0.02) init took (the narrower init starts every residual branch near zero).
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patches(x).flatten(2).transpose(1, 2) + self.position  # [B, N, D]
        if self.cls is not None:
            x = torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1)
        x = self.norm(self.blocks(self.dropout(x)))
        return self.head(x[:, 0] if self.cls is not None else x.mean(1))


@register_model(
    "vit",
    params={
        "patch_size": Param(4, "side of a square patch, pixels; must divide 28", ge=1, le=28),
        "dim": Param(128, "token width", ge=1, le=4096),
        "depth": Param(6, "transformer blocks", ge=1, le=64),
        "heads": Param(4, "attention heads per block; must divide dim", ge=1, le=64),
        "mlp_ratio": Param(2.0, "MLP hidden width over dim", gt=0, le=16),
        "dropout": Param(0.1, "dropout in the MLPs and after the patch embedding", ge=0, lt=1),
        "attn_dropout": Param(0.0, "dropout on the attention weights", ge=0, lt=1),
        "pool": Param("mean", "class token, or the mean of all tokens", choices=("cls", "mean")),
        "pos_embedding": Param("sincos", "learned positions, or fixed 2-D sin-cos", choices=("learned", "sincos")),
    },
    check=check,
    gpu_share=0.5,
    summary="Vision Transformer from scratch: conv patch embedding, pre-norm SDPA blocks, cls or mean pooling",
)
def build_vit(cfg: Config) -> nn.Module:
    return ViT(cfg)
