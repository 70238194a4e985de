"""ONNX export: a small CNN agrees with PyTorch under ONNX Runtime, the exporter used and the reasons for failures
are recorded, and nothing raises."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

import models
from jobs.engine import config as run_config
from jobs.engine.onnx_export import export_and_check


@pytest.fixture(scope="module")
def cnn() -> nn.Module:
    torch.manual_seed(0)
    return models.build("cnn", run_config.resolve("cnn", "smoke", ["channels=8,16", "hidden=32"]))


@pytest.mark.slow  # ~6 s on 2 cores: the process's first torch.export-based export sets up onnxscript's registry
def test_a_small_cnn_exports_and_agrees_with_pytorch(cnn, tmp_path):
    torch.manual_seed(1)
    images, labels = torch.randn(200, 1, 28, 28), torch.randint(0, 10, (200,))
    ticks = iter(range(10**6))
    cnn.train()
    result = export_and_check(cnn, images, labels, path=tmp_path / "cnn.onnx", latency_calls=5, latency_warmup=2,
                              clock=lambda: next(ticks) * 0.002)
    assert result.ok and result.exported and result.reason is None, result.reason
    assert result.exporter == "dynamo" and result.dynamo_error is None
    assert cnn.training  # left in its mode
    assert result.images == 200 and result.agreement >= 0.999

    # Independently: ONNX Runtime on the kept file, at batch 200 and 1 (the batch dimension is dynamic).
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    onnx_logits = session.run(None, {name: images.numpy()})[0]
    assert session.run(None, {name: images[:1].numpy()})[0].shape == (1, 10)
    with torch.no_grad():
        torch_logits = cnn.eval()(images).numpy()
    cnn.train()
    assert np.mean(onnx_logits.argmax(1) == torch_logits.argmax(1)) == pytest.approx(result.agreement)
    assert result.onnx_accuracy == pytest.approx(np.mean(onnx_logits.argmax(1) == labels.numpy()))
    assert result.torch_accuracy == pytest.approx(np.mean(torch_logits.argmax(1) == labels.numpy()))
    assert result.max_abs_logit_diff < 1e-3

    # Latency by serving.py's method: 5 timed calls, each one 2 ms tick of the fake clock.
    assert result.latency["latency_calls"] == 5 and result.latency["latency_warmup"] == 2
    assert result.latency["latency_ms_p50"] == pytest.approx(2.0) == result.latency["latency_ms_p95"]
    assert result.latency["runtime"] == "onnxruntime" and result.latency["threads"] == torch.get_num_threads()
    assert result.opset and result.onnx_size_mb > 0


class Unexportable(nn.Module):
    """An SVD in the forward pass: ONNX has no such operator and neither exporter decomposes it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(10, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        singular = torch.linalg.svd(x.flatten(1)[:, :10].reshape(-1, 2, 5)).S  # [B, 2]
        return self.fc(singular.repeat(1, 5))


def test_a_failed_export_is_recorded_with_its_reason():
    result = export_and_check(Unexportable(), torch.randn(4, 1, 28, 28), latency_calls=0)
    assert not result.ok and not result.exported and result.exporter is None
    assert "linalg_svd" in result.reason and "dynamo" in result.reason and "torchscript" in result.reason
    assert "linalg_svd" in result.dynamo_error
    assert result.agreement is None and result.latency == {}


class DataDependent(nn.Module):
    """A branch on a tensor's value: torch.export refuses it, the TorchScript tracer records the branch taken."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.fc(x.flatten(1))
        return logits if float(logits.abs().sum()) >= 0 else -logits


def test_the_legacy_exporter_is_the_fallback_and_the_first_failure_is_kept():
    result = export_and_check(DataDependent(), torch.randn(8, 1, 28, 28), latency_calls=0)
    assert result.ok and result.exporter == "torchscript" and result.agreement == 1.0
    assert result.dynamo_error  # why torch.export refused it


def test_the_detector_is_recorded_as_not_exported():
    cfg = run_config.resolve("faster_rcnn", "smoke")
    result = export_and_check(models.build("faster_rcnn", cfg), torch.rand(2, 1, 84, 84), latency_calls=0)
    assert not result.ok and result.reason.startswith("not exported") and "list" in result.reason


def test_a_model_that_fails_in_pytorch_never_raises():
    broken = nn.Linear(3, 10)  # 784 inputs cannot go through it
    result = export_and_check(broken, torch.randn(2, 1, 28, 28), latency_calls=0)
    assert not result.ok and result.reason.startswith("RuntimeError")
    assert export_and_check(nn.Flatten(), torch.randn(1, 1, 28, 28)).reason.startswith("ValueError")
