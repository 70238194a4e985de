"""ONNX export: a small CNN agrees with PyTorch under ONNX Runtime and is deployable; an export that disagrees
(a data-dependent branch the tracer fixes, a Python number it bakes in, non-finite logits) makes the other exporter
be tried and, if none agrees, is kept only as model.not-deployable.onnx with its agreement; too few images cannot
show 99.9%; the exporter used and the reasons for failures are recorded, and nothing raises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

import models
from jobs.engine import config as run_config
from jobs.engine.measure.onnx_export import MIN_CHECK_IMAGES, REQUIRED_AGREEMENT, export_and_check, not_deployable


@pytest.fixture(scope="module")
def cnn() -> nn.Module:
    torch.manual_seed(0)
    return models.build("cnn", run_config.resolve("cnn", "smoke", ["channels=8,16", "hidden=32"]))


@pytest.mark.slow  # ~6 s on 2 cores: the process's first torch.export-based export sets up onnxscript's registry
def test_a_small_cnn_exports_and_agrees_with_pytorch(cnn, tmp_path):
    torch.manual_seed(1)
    images, labels = torch.randn(MIN_CHECK_IMAGES, 1, 28, 28), torch.randint(0, 10, (MIN_CHECK_IMAGES,))
    ticks = iter(range(10**6))
    cnn.train()
    result = export_and_check(cnn, images, labels, path=tmp_path / "cnn.onnx", latency_calls=5, latency_warmup=2,
                              clock=lambda: next(ticks) * 0.002)
    assert result.ok and result.exported and result.deployable and result.reason is None, result.reason
    assert result.exporter == "dynamo" and result.dynamo_error is None
    assert result.attempts == [{"exporter": "dynamo", "agreement": result.agreement, "reason": None}]
    assert not not_deployable(tmp_path / "cnn.onnx").exists() and not list(tmp_path.glob(".*"))  # no leftovers
    assert cnn.training  # left in its mode
    assert result.images == MIN_CHECK_IMAGES and result.agreement >= REQUIRED_AGREEMENT

    # Independently: ONNX Runtime on the kept file, at batch 200 and 1 (the batch dimension is dynamic).
    assert result.path == str(tmp_path / "cnn.onnx")
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


def mixed_images(n: int = MIN_CHECK_IMAGES) -> torch.Tensor:
    """N images in batches of 256 (the check's batch) whose mean is alternately above and below 0: half the check's
    batches take each side of a branch on the batch's mean."""
    torch.manual_seed(2)
    signs = torch.tensor([1.0 if (i // 256) % 2 == 0 else -1.0 for i in range(n)]).view(-1, 1, 1, 1)
    return torch.randn(n, 1, 28, 28) + 0.5 * signs


class DataDependent(nn.Module):
    """A branch on a tensor's value: torch.export refuses it, the TorchScript tracer records the branch its example
    (the first two images) took, so that every batch taking the other branch is predicted otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.fc(x.flatten(1))
        return logits if float(x.mean()) > 0 else -logits


def test_an_export_that_disagrees_is_not_deployable_and_not_model_onnx(tmp_path):
    # torch.export refuses the branch; the tracer's file predicts like PyTorch only on the batches of its branch.
    result = export_and_check(DataDependent(), mixed_images(), path=tmp_path / "model.onnx", latency_calls=5)
    assert result.exported and not result.ok and not result.deployable
    assert result.exporter == "torchscript" and 0.4 < result.agreement < REQUIRED_AGREEMENT
    assert [a["exporter"] for a in result.attempts] == ["dynamo", "torchscript"]  # both were tried
    assert "GuardOnDataDependentSymNode" in result.attempts[0]["reason"] and result.attempts[0]["agreement"] is None
    assert result.dynamo_error == result.attempts[0]["reason"]  # why torch.export refused it, kept
    assert result.reason.startswith(f"not deployable: agreement {result.agreement:.2%} on {MIN_CHECK_IMAGES} test")
    assert not (tmp_path / "model.onnx").exists()  # nothing presented as the deployable model
    assert result.path == str(tmp_path / "model.not-deployable.onnx") and Path(result.path).is_file()
    assert result.latency == {}  # a wrong model's speed is not reported


class Scaled(nn.Module):
    """Logits scaled by a Python float read from the batch: the TorchScript tracer bakes the example's value in (so
    batches whose mean has the other sign flip their argmax), torch.export keeps it a graph input."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) * float(x.mean())


def test_an_exporter_that_disagrees_makes_the_other_one_be_tried(tmp_path):
    result = export_and_check(Scaled(), mixed_images(), path=tmp_path / "model.onnx", latency_calls=0,
                              exporters=("torchscript", "dynamo"))
    assert result.ok and result.deployable and result.exporter == "dynamo" and result.agreement == 1.0
    first, second = result.attempts
    assert first["exporter"] == "torchscript" and first["agreement"] < REQUIRED_AGREEMENT
    assert "below the 99.9% required" in first["reason"] and second == {"exporter": "dynamo", "agreement": 1.0,
                                                                        "reason": None}
    assert (tmp_path / "model.onnx").is_file() and not (tmp_path / "model.not-deployable.onnx").exists()


def test_an_export_checked_on_too_few_images_is_not_deployable():
    result = export_and_check(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), torch.randn(500, 1, 28, 28),
                              latency_calls=0)
    assert result.agreement == 1.0 and not result.deployable and not result.ok
    assert "checked on 500 test images, too few to show 99.9% agreement (at least 1,000)" in result.reason


class NanWhenTraced(nn.Module):
    """PyTorch is finite everywhere; the traced file is NaN everywhere: a path taken only under tracing (as
    torchvision's models branch on `torch.jit.is_tracing()`) that is wrong. A NaN row's argmax is 0, so a bare
    argmax comparison would count every image PyTorch calls 0 as agreeing."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.fc(x.flatten(1))
        return logits * float("nan") if torch.jit.is_tracing() else logits


def test_non_finite_onnx_logits_count_as_disagreement():
    result = export_and_check(NanWhenTraced(), torch.randn(MIN_CHECK_IMAGES, 1, 28, 28), latency_calls=0,
                              exporters=("torchscript",))
    assert not result.deployable and result.agreement == 0.0, result.reason
    assert "non-finite logits for 1000 of 1000 images" in result.reason and result.max_abs_logit_diff is None


def test_the_detector_is_recorded_as_not_exported():
    cfg = run_config.resolve("faster_rcnn", "smoke")
    result = export_and_check(models.build("faster_rcnn", cfg), torch.rand(2, 1, 84, 84), latency_calls=0)
    assert not result.ok and result.reason.startswith("not exported") and "list" in result.reason


def test_a_model_that_fails_in_pytorch_never_raises():
    broken = nn.Linear(3, 10)  # 784 inputs cannot go through it
    result = export_and_check(broken, torch.randn(2, 1, 28, 28), latency_calls=0)
    assert not result.ok and result.reason.startswith("RuntimeError")
    assert export_and_check(nn.Flatten(), torch.randn(1, 1, 28, 28)).reason.startswith("ValueError")
