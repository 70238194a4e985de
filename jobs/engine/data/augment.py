"""Normalisation and augmentation as batched tensor ops on the worker's device (no PIL, no DataLoader)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from models.mnist import MEAN, STD


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 28, 28] -> float [B, 1, 28, 28], zero mean and unit variance over MNIST."""
    return (images.unsqueeze(1).float() / 255.0 - MEAN) / STD


def random_affine(x: torch.Tensor, shift_px: float, rotate_deg: float) -> torch.Tensor:
    """Random shifts and rotations for a whole batch with one affine_grid/grid_sample call."""
    if shift_px <= 0 and rotate_deg <= 0:
        return x
    batch, _, height, width = x.shape
    angle = (torch.rand(batch, device=x.device) * 2 - 1) * math.radians(rotate_deg)
    # affine_grid works in [-1, 1] coordinates, so a shift of k pixels is 2k/size. Python scalars only: a tensor
    # made from a host list would be a host-to-device copy, which a captured CUDA graph cannot hold.
    shift = torch.rand(batch, 2, device=x.device) * 2 - 1
    shift_x, shift_y = shift[:, 0] * (2 * shift_px / width), shift[:, 1] * (2 * shift_px / height)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    # Background after normalisation is the value of a zero pixel, not 0.
    background = -MEAN / STD
    return F.grid_sample(x - background, grid, align_corners=False, padding_mode="zeros") + background


def prepare_batch(images: torch.Tensor, train: bool, shift_px: float = 0.0, rotate_deg: float = 0.0,
                  channels_last: bool = False) -> torch.Tensor:
    x = normalise(images)
    x = random_affine(x, shift_px, rotate_deg) if train else x
    return x.contiguous(memory_format=memory_format(channels_last))


def memory_format(channels_last: bool) -> torch.memory_format:
    """The layout of batches and conv weights; both must agree or every conv converts on the fly."""
    return torch.channels_last if channels_last else torch.contiguous_format
