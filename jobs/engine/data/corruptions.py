"""Robustness test sets: seeded, deterministic corruptions of MNIST test images, in the spirit of MNIST-C (Mu &
Gilmer 2019, "MNIST-C: A Robustness Benchmark for Computer Vision", arXiv:1906.02337).

Every corruption takes `(images, seed)`, images uint8 [N, 28, 28] on any device, and returns uint8 [N, 28, 28] on
the same device, computed there with torch ops only (no PIL, no numpy, no host round trip). The same seed gives the
same pixels on the same device; random draws come from a `torch.Generator` on the images' device, so a CPU and a
CUDA run of the same seed draw different numbers (and bilinear resampling may round a pixel differently): compare
robustness numbers computed on one kind of device. Corruptions without randomness (blur, contrast, invert) ignore
the seed. Severity is fixed per corruption (one level, stated in each docstring) so that a "shift" accuracy means
the same thing in every report; the keyword arguments let a test or a study pick another level.

`CORRUPTIONS` maps each name to its function; `corrupt(images, name, seed)` applies one by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from models.mnist import SIDE

MAX_SHIFT_PX = 3  # MNIST digits fill a 20x20 box centred by mass in 28x28, so 3 px still keeps most of one in frame
MAX_ROTATION_DEG = 30.0
SCALE_RANGE = (0.7, 1.3)
NOISE_SIGMA = 0.25  # of the full 0..255 range; between severities 3 and 4 of Hendrycks & Dietterich's (2019) 5
IMPULSE_FRACTION = 0.1
BLUR_SIGMA_PX = 1.0
CONTRAST_FACTOR = 0.3  # Hendrycks & Dietterich's (2019) contrast severity 2

Corruption = Callable[[torch.Tensor, int], torch.Tensor]


def _check(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 3 or \
            tuple(images.shape[1:]) != (SIDE, SIDE):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected uint8 images [N, {SIDE}, {SIDE}], got {shape} "
                         f"{getattr(images, 'dtype', '')}")


def _generator(images: torch.Tensor, seed: int) -> torch.Generator:
    return torch.Generator(device=images.device).manual_seed(int(seed))


def _uniform(images: torch.Tensor, generator: torch.Generator, low: float, high: float,
             size: tuple[int, ...]) -> torch.Tensor:
    return low + (high - low) * torch.rand(size, generator=generator, device=images.device)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp(0, 255).to(torch.uint8)


def _affine(images: torch.Tensor, angle_rad: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Rotate each image by ANGLE_RAD (counter-clockwise as displayed, rows down) and zoom it by SCALE about its
    centre, bilinear, with black (0) outside the source image."""
    x = images.unsqueeze(1).float()
    # affine_grid maps each output position to the input position it samples ([-1, 1] coordinates, y down), so
    # theta is the inverse of the wanted motion: a turn of the sampling grid by -a (written with y down) and a
    # shrink by 1/s show the content turned by +a counter-clockwise and enlarged by s (tests compare with rot90).
    cos, sin = torch.cos(angle_rad), torch.sin(angle_rad)
    # Snap values within float error of 0 or +-1, so that a quarter turn samples pixel centres exactly.
    cos, sin = (torch.where((v - v.round()).abs() < 1e-6, v.round(), v) for v in (cos, sin))
    cos, sin, zero = cos / scale, sin / scale, torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return _to_uint8(out.squeeze(1))


def shift(images: torch.Tensor, seed: int, pixels: tuple[int, int] | None = None,
          max_pixels: int = MAX_SHIFT_PX) -> torch.Tensor:
    """Translate each image by a whole number of pixels, filling with black (no wrap-around).

    Severity: each image's (down, right) shift drawn uniformly from the integers -MAX_PIXELS..MAX_PIXELS (3) per
    axis (MNIST-C's "translate"). PIXELS = (down, right) shifts every image by that instead; a shift of (0, k)
    equals `torch.roll(x, k, dims=-1)` with the k wrapped-around columns set to 0.
    """
    _check(images)
    n, device = images.shape[0], images.device
    if pixels is None:
        offsets = torch.randint(-max_pixels, max_pixels + 1, (n, 2), generator=_generator(images, seed),
                                device=device)
    else:
        offsets = torch.tensor(pixels, device=device).expand(n, 2)
    rows = torch.arange(SIDE, device=device).view(1, SIDE, 1) - offsets[:, 0].view(n, 1, 1)
    cols = torch.arange(SIDE, device=device).view(1, 1, SIDE) - offsets[:, 1].view(n, 1, 1)
    inside = (rows >= 0) & (rows < SIDE) & (cols >= 0) & (cols < SIDE)
    # One gather over the flattened image: output (r, c) reads source (r - down, c - right) where that exists.
    index = (rows.clamp(0, SIDE - 1) * SIDE + cols.clamp(0, SIDE - 1)).reshape(n, -1)
    moved = images.reshape(n, -1).gather(1, index).view(n, SIDE, SIDE)
    return torch.where(inside, moved, torch.zeros_like(moved))


def rotate(images: torch.Tensor, seed: int, degrees: float | None = None,
           max_degrees: float = MAX_ROTATION_DEG) -> torch.Tensor:
    """Rotate each image about its centre, bilinear, black outside.

    Severity: each image's angle drawn uniformly from [-MAX_DEGREES, MAX_DEGREES] (30 degrees; MNIST-C's
    "rotate"). DEGREES rotates every image by that angle instead, counter-clockwise as displayed (rows down),
    the direction of `torch.rot90(x, 1, dims=(-2, -1))`, which a quarter turn reproduces exactly.
    """
    _check(images)
    n, device = images.shape[0], images.device
    if degrees is None:
        angle = _uniform(images, _generator(images, seed), -max_degrees, max_degrees, (n,))
    else:
        angle = torch.full((n,), float(degrees), device=device)
    return _affine(images, angle * (math.pi / 180), torch.ones(n, device=device))


def scale(images: torch.Tensor, seed: int, factor: float | None = None,
          factor_range: tuple[float, float] = SCALE_RANGE) -> torch.Tensor:
    """Zoom each image about its centre by a factor (above 1 enlarges the digit), bilinear, black outside.

    Severity: each image's factor drawn uniformly from FACTOR_RANGE (0.7..1.3; MNIST-C's "scale" shrinks only).
    FACTOR zooms every image by that instead.
    """
    _check(images)
    n, device = images.shape[0], images.device
    if factor is None:
        factors = _uniform(images, _generator(images, seed), factor_range[0], factor_range[1], (n,))
    else:
        factors = torch.full((n,), float(factor), device=device)
    return _affine(images, torch.zeros(n, device=device), factors)


def gaussian_noise(images: torch.Tensor, seed: int, sigma: float = NOISE_SIGMA) -> torch.Tensor:
    """Add independent Gaussian noise to every pixel, clip to 0..255 and round.

    Severity: standard deviation SIGMA x 255 grey levels (0.25 x 255 = 64), as Hendrycks & Dietterich's (2019)
    "gaussian_noise" on images scaled to [0, 1].
    """
    _check(images)
    noise = torch.randn(images.shape, generator=_generator(images, seed), device=images.device)
    return _to_uint8(images.float() + noise * (sigma * 255.0))


def impulse_noise(images: torch.Tensor, seed: int, fraction: float = IMPULSE_FRACTION) -> torch.Tensor:
    """Salt and pepper: each pixel independently set to 0 or 255 (equally likely) with probability FRACTION.

    Severity: 10% of pixels (MNIST-C's "impulse_noise").
    """
    _check(images)
    generator = _generator(images, seed)
    hit = torch.rand(images.shape, generator=generator, device=images.device) < fraction
    salt = torch.rand(images.shape, generator=generator, device=images.device) < 0.5
    return torch.where(hit, salt.to(torch.uint8) * 255, images)


def blur(images: torch.Tensor, seed: int, sigma: float = BLUR_SIGMA_PX) -> torch.Tensor:
    """Gaussian blur, separable, kernel radius ceil(3 sigma), black beyond the border. SEED is ignored.

    Severity: sigma 1 pixel (MNIST-C blurs with glass and motion blur; a plain Gaussian is the simplest of the
    family, as Hendrycks & Dietterich's (2019) "gaussian_blur").
    """
    _check(images)
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, device=images.device, dtype=torch.float32)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    # A weighted sum of shifted views of the zero-padded batch: a 1-channel conv2d is several times slower on CPU.
    x = F.pad(images.float(), (radius, radius, radius, radius))
    x = sum(kernel[i] * x[:, :, i:i + SIDE] for i in range(2 * radius + 1))
    x = sum(kernel[i] * x[:, i:i + SIDE, :] for i in range(2 * radius + 1))
    return _to_uint8(x)


def contrast(images: torch.Tensor, seed: int, factor: float = CONTRAST_FACTOR) -> torch.Tensor:
    """Pull each image's pixels towards its own mean: x' = mean + FACTOR (x - mean). SEED is ignored.

    Keeps each image's mean grey level (to within rounding); severity FACTOR 0.3 keeps 30% of the contrast
    (Hendrycks & Dietterich 2019, "contrast").
    """
    _check(images)
    x = images.float()
    mean = x.mean(dim=(1, 2), keepdim=True)
    return _to_uint8(mean + factor * (x - mean))


def invert(images: torch.Tensor, seed: int) -> torch.Tensor:
    """White digit on black becomes black on white: 255 - x. SEED is ignored. (MNIST-C does not have it; it is
    the classic test of whether a model learnt strokes or brightness.)"""
    _check(images)
    return 255 - images


CORRUPTIONS: dict[str, Corruption] = {
    "shift": shift,
    "rotate": rotate,
    "scale": scale,
    "gaussian_noise": gaussian_noise,
    "impulse_noise": impulse_noise,
    "blur": blur,
    "contrast": contrast,
    "invert": invert,
}


def corrupt(images: torch.Tensor, name: str, seed: int) -> torch.Tensor:
    """CORRUPTIONS[NAME](images, seed); raises ValueError naming the known corruptions for an unknown name."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    return CORRUPTIONS[name](images, seed)
