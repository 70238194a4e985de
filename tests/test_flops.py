"""FLOPs, training FLOPs and saved size, against counts written out by hand for tiny models."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import models
from jobs.engine import config as run_config
from jobs.engine.measure import flops


def conv_then_linear() -> nn.Module:
    # 1 -> 4 channels, 3x3, no padding: 28x28 -> 26x26; then 4*26*26 = 2704 features -> 10 logits.
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(1), nn.Flatten(), nn.Linear(2704, 10))


# A multiply-add counts 2 FLOPs; biases, the ReLU and the pooling count nothing.
CONV_FLOPS = 2 * 4 * 1 * 3 * 3 * 26 * 26  # 2·Cout·Cin·k²·Hout·Wout = 48,672
LINEAR_FLOPS = 2 * 2704 * 10  # 2·in·out = 54,080


def test_one_conv_and_one_linear_layer_counted_by_hand():
    result = flops.forward_flops(conv_then_linear(), torch.randn(1, 1, 28, 28))
    assert result["flops_per_image"] == CONV_FLOPS + LINEAR_FLOPS
    assert result["by_op"] == {"aten.convolution": CONV_FLOPS, "aten.addmm": LINEAR_FLOPS}
    assert result["gflops_per_image"] == pytest.approx((CONV_FLOPS + LINEAR_FLOPS) / 1e9)


def test_a_batch_counts_the_same_per_image_and_the_model_keeps_its_mode():
    model = conv_then_linear().train()
    result = flops.forward_flops(model, torch.randn(5, 1, 28, 28))
    assert result["batch"] == 5 and result["flops"] == 5 * (CONV_FLOPS + LINEAR_FLOPS)
    assert result["flops_per_image"] == CONV_FLOPS + LINEAR_FLOPS
    assert model.training
    assert flops.gflops_per_image(model) == pytest.approx((CONV_FLOPS + LINEAR_FLOPS) / 1e9)


class Attention(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = x.reshape(1, 2, 5, 8)  # batch 1, 2 heads, 5 tokens, 8 dims
        return F.scaled_dot_product_attention(q, q, q)


def test_cpu_attention_is_counted_as_its_two_products():
    # QKᵀ: 2·5·5·8 per head, AV: 2·5·5·8 per head; 2 heads.
    result = flops.forward_flops(Attention(), torch.randn(1, 80))
    assert result["flops_per_image"] == 2 * (2 * 5 * 5 * 8 + 2 * 5 * 5 * 8)


def test_the_vit_counts_its_attention():
    cfg = run_config.resolve("vit", "smoke")
    result = flops.forward_flops(models.build("vit", cfg), torch.randn(1, 1, 28, 28))
    attention = [v for k, v in result["by_op"].items() if "attention" in k]
    tokens = (28 // cfg["patch_size"]) ** 2 + (cfg["pool"] == "cls")
    # dim = heads × head dim, so per block 2 products of 2·tokens²·dim each.
    assert sum(attention) == cfg["depth"] * 2 * 2 * tokens**2 * cfg["dim"]


def test_training_flops_are_three_forwards_per_image_trained():
    assert flops.training_flops(1e6, 60_000 * 3) == 3 * 1e6 * 180_000
    with pytest.raises(ValueError):
        flops.training_flops(-1.0, 10)


def test_size_is_the_saved_state_dict_in_si_megabytes():
    model = conv_then_linear()
    weights = sum(t.numel() for t in model.state_dict().values()) * 4  # fp32
    size = flops.model_size_bytes(model)
    assert weights <= size <= weights + 10_000  # torch.save's zip container adds a few KB at most
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    assert size == len(buffer.getvalue())
    assert flops.model_size_mb(model) == size / 1_000_000
