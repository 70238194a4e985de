"""What a model costs to compute and to store: forward FLOPs per image, a run's training FLOPs, saved size.

FLOPs are counted by PyTorch's own `torch.utils.flop_counter.FlopCounterMode` (no extra dependency), which
intercepts aten ops at dispatch and applies a formula to the shapes of a fixed set of them. In torch 2.14 that set
is: convolutions (aten.convolution, _convolution, cudnn_convolution, _slow_conv2d_forward, ...), matrix products
(mm, addmm, bmm, baddbmm, _scaled_mm) and attention (the CUDA scaled_dot_product flash / efficient / cuDNN kernels,
flex_attention). Its convention: a multiply-add is 2 FLOPs, so a conv is 2·Cout·(Cin/groups)·k_h·k_w·Hout·Wout per
image and a linear layer 2·in·out; biases are not counted. Everything else counts 0: elementwise ops and
activations, normalisation (batch / layer / group norm), softmax, pooling, interpolation, embedding look-ups,
RoIAlign and NMS (torchvision ops), and all data movement (copies, reshapes, padding, concatenation). For
convolutional nets and ViTs the products dominate, so the count is a close lower bound.

One addition here: on a CPU, `F.scaled_dot_product_attention` runs as aten._scaled_dot_product_flash_attention_for_cpu,
which torch 2.14's counter does not know (it would count the ViT's attention as 0). It is counted with the counter's
own SDPA formula (`sdpa_flop_count`: the two batched products QKᵀ and AV), as the CUDA kernels are, so that a
model's count does not depend on the device.
"""

from __future__ import annotations

import io
import math
from typing import Any, TypedDict

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

# Forward + backward ≈ 3 forwards: the backward computes gradients for both the activations and the weights, each
# a product as large as the forward's (Kaplan et al. 2020, "Scaling Laws for Neural Language Models",
# arXiv:2001.08361, §2.1: C ≈ 6N FLOPs per token = 2N forward + 4N backward).
TRAINING_FLOPS_PER_FORWARD = 3
BYTES_PER_MB = 10**6  # SI megabytes (as disk sizes are quoted), not MiB (2**20)


def _cpu_sdpa_flops(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, out_shape: Any = None,
                    **kwargs: Any) -> int:
    """`sdpa_flop_count`'s formula, 2·S_q·S_k·D (QKᵀ) + 2·S_q·S_k·D_v (AV) per (batch, head), for any leading dims."""
    *lead, s_q, d = query_shape
    s_k, d_v = key_shape[-2], value_shape[-1]
    if len(lead) == 2:
        return sdpa_flop_count(query_shape, key_shape, value_shape)
    return 2 * math.prod(lead) * s_q * s_k * (d + d_v)


def _extra_formulas() -> dict[Any, Any]:
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {op: _cpu_sdpa_flops} if op is not None else {}


class FlopCount(TypedDict):
    """`forward_flops`: one forward pass's FLOPs, for the batch and per image, and per image by aten op."""

    batch: int
    flops: int
    flops_per_image: float
    gflops_per_image: float
    by_op: dict[str, float]


def forward_flops(model: nn.Module, inputs: torch.Tensor) -> FlopCount:
    """FLOPs of one forward pass of MODEL on INPUTS, in eval mode under `torch.no_grad()`, per image.

    INPUTS: a float [B, ...] batch, called as `model(inputs)`: normalised [B, 1, 28, 28] images for a classifier,
    [B, 1, S, S] canvases in [0, 1] for the detector (whose count depends on the proposals it keeps: pass real
    canvases). Moved to MODEL's device; MODEL is put back in its previous mode afterwards. Counted in fp32, since a
    FLOP count does not depend on the precision. For the counting rules and what is not counted, see the module's
    docstring.

    Returns {"batch": B, "flops": total for the batch, "flops_per_image": flops / B, "gflops_per_image":
    flops / B / 1e9, "by_op": {aten op name: FLOPs per image}}. Raises ValueError for an empty batch.
    """
    if inputs.ndim < 1 or not len(inputs):
        raise ValueError(f"need a batch of at least one input, got shape {list(inputs.shape)}")
    first = next(model.parameters(), None)
    inputs = inputs.to(first.device if first is not None else "cpu", torch.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=_extra_formulas()) as counter:
            model(inputs)
    finally:
        model.train(was_training)
    batch, total = len(inputs), counter.get_total_flops()
    by_op = {str(op): flops / batch for op, flops in counter.get_flop_counts()["Global"].items()}
    return {"batch": batch, "flops": total, "flops_per_image": total / batch, "gflops_per_image": total / batch / 1e9,
            "by_op": by_op}


def gflops_per_image(model: nn.Module, input_shape: tuple[int, ...] = (1, 28, 28),
                     inputs: torch.Tensor | None = None) -> float:
    """Forward GFLOPs (10^9 FLOPs) per image of MODEL at batch 1: `forward_flops` of INPUTS[:1], or of one standard
    normal input of INPUT_SHAPE (a classifier's count does not depend on the values)."""
    sample = inputs[:1] if inputs is not None else torch.randn(1, *input_shape)
    return forward_flops(model, sample)["gflops_per_image"]


def detection_gflops_per_canvas(model: nn.Module, canvases: torch.Tensor | None = None,
                                canvas_size: int = 84) -> float:
    """Forward GFLOPs per canvas of the detector: `forward_flops` of CANVASES ([B, 1, S, S] in [0, 1]) divided by B.

    The RoI heads run on the proposals left after NMS, so the count depends on the canvases: pass real ones
    (e.g. `as_float(task.canvases("val").images[:16])`). None: one canvas of uniform noise, a stand-in only.
    """
    canvases = canvases if canvases is not None else torch.rand(1, 1, canvas_size, canvas_size)
    return forward_flops(model, canvases)["gflops_per_image"]


def training_flops(forward_flops_per_image: float, images_trained: int | float) -> float:
    """Estimated training FLOPs of a run: 3 × forward FLOPs per image × images trained (all epochs, all workers).

    3 = one forward + a backward of about twice the forward's FLOPs (gradients of activations and of weights):
    the standard estimate of Kaplan et al. 2020, arXiv:2001.08361 (C ≈ 6N per token = 3 × the 2N forward).
    IMAGES_TRAINED is the loop's `train_images` (epochs × training set size for a finished run).
    Not counted: the validation passes after each epoch, the optimizer step, data loading; an overestimate for
    frozen layers (no weight gradients) and, for the detector, only as good as the eval-mode forward is a proxy
    for the train-mode one (which samples different RoI counts). Raises ValueError for negative inputs.
    """
    if forward_flops_per_image < 0 or images_trained < 0:
        raise ValueError(f"need non-negative FLOPs and images, got {forward_flops_per_image}, {images_trained}")
    return TRAINING_FLOPS_PER_FORWARD * float(forward_flops_per_image) * float(images_trained)


def model_size_bytes(model: nn.Module) -> int:
    """Bytes of MODEL's state_dict (parameters and buffers) serialized by `torch.save`, as a checkpoint stores it."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def model_size_mb(model: nn.Module) -> float:
    """`model_size_bytes` in MB, where 1 MB = 10^6 bytes (SI), not MiB (2^20 bytes)."""
    return model_size_bytes(model) / BYTES_PER_MB
