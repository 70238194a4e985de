"""The `precision` loop key (jobs/engine/precision.py): which runs train under bf16 autocast, and that they really do.
"""

import pytest
import torch
from torch import nn

import models
from jobs.engine import config as run_config
from jobs.engine import precision
from jobs.engine.data.mnist import Mnist
from jobs.engine.errors import UsageError
from jobs.engine.tasks.classification import ClassificationTask

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_precision_defaults_to_auto_and_rejects_other_values():
    assert run_config.resolve("cnn", "smoke")["precision"] == "auto"
    with pytest.raises(UsageError, match="precision='fp16' is not one of auto, bf16, fp32"):
        run_config.resolve("cnn", "smoke", ["precision=fp16"])


@pytest.mark.parametrize(("choice", "device", "model", "native", "expected"), [
    ("auto", CUDA, "vit", False, "bf16"),
    ("auto", CPU, "cnn", True, "bf16"),
    ("auto", CPU, "resnet18", True, "bf16"),
    ("auto", CPU, "cnn", False, "fp32"),  # emulated bf16 is slower than fp32
    ("auto", CPU, "vit", True, "fp32"),  # measured slower in bf16 on a CPU
    ("auto", CUDA, "faster_rcnn", True, "fp32"),  # detection: fp32 everywhere
    ("bf16", CPU, "faster_rcnn", True, "fp32"),
    ("bf16", CPU, "vit", False, "bf16"),  # an explicit choice wins
    ("fp32", CUDA, "cnn", True, "fp32"),
])
def test_what_auto_resolves_to(monkeypatch, choice, device, model, native, expected):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert precision.resolve_precision(choice, device, model) == expected


def test_native_bf16_is_read_from_the_cpu_flags(monkeypatch, tmp_path):
    for flags, expected in (("fpu sse avx512f avx512_bf16", True), ("fpu amx_bf16 amx_tile", True),
                            ("fpu sse avx2 avx512f", False)):
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor : 0\nflags : {flags}\n")
        monkeypatch.setattr(precision, "Path", lambda _path, info=info: info)
        precision.cpu_has_native_bf16.cache_clear()
        assert precision.cpu_has_native_bf16() is expected
    precision.cpu_has_native_bf16.cache_clear()


def tiny_data() -> Mnist:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (64,), generator=gen)
    return Mnist(images, labels, images[:32], labels[:32], images[:32], labels[:32])


@pytest.mark.parametrize(("chosen", "dtype"), [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_the_task_computes_in_the_resolved_precision(chosen, dtype):
    cfg = {**run_config.resolve("cnn", "smoke"), "precision": chosen}
    model = models.build("cnn", cfg).to(memory_format=torch.channels_last)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    seen: list[torch.dtype] = []
    convs[0].register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    task = ClassificationTask(tiny_data(), cfg, CPU)
    loss = task.loss(model, torch.arange(16))
    loss.backward()
    assert loss.dtype == torch.float32  # the loss and the weights stay fp32
    assert convs[0].weight.grad.dtype == torch.float32
    task.evaluate(model, "val")
    assert seen == [dtype, dtype]  # one training forward, one evaluation forward
