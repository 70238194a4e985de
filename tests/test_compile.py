"""The `compile` loop key, the static-shape step (jobs/engine/train/static_step.py) and the preset's GPU settings, on a
CPU.

On a CPU the static step runs eagerly (nothing to capture): the same arithmetic a CUDA graph replays, so it must
train exactly as the eager loop does and see every sample once per epoch, tail included.
"""

import pytest
import torch
from torch import nn

import models
from jobs.engine import config as run_config
from jobs.engine.data.mnist import Mnist
from jobs.engine.errors import UsageError
from jobs.engine.presets import PRESETS
from jobs.engine.tasks.classification import ClassificationTask
from jobs.engine.train.epoch import place, run_epoch
from jobs.engine.train.optim import lr_table, make_optimizer, make_schedule, param_groups
from jobs.engine.train.prepare import wants_static_step
from jobs.engine.train.static_step import StaticStep
from jobs.train import main
from tests.cli import assert_usage_error, run_in_process
from tests.local_session import train_locally

CPU = torch.device("cpu")


def test_compile_defaults_to_auto_and_takes_on_and_off():
    assert run_config.resolve("cnn", "smoke")["compile"] == "auto"
    for value in ("on", "off", "auto"):
        assert run_config.resolve("cnn", "smoke", [f"compile={value}"])["compile"] == value
    with pytest.raises(UsageError, match="compile='fast' is not one of auto, on, off"):
        run_config.resolve("cnn", "smoke", ["compile=fast"])


def test_bad_compile_value_is_one_error_line(mnist_dir, capsys):
    proc = run_in_process(main, ["--model", "cnn", "--set", "compile=yes", "--data-dir", str(mnist_dir)], capsys)
    assert_usage_error(proc, "compile='yes' is not one of auto, on, off")


class Static:
    static_shapes = True


class Detection:
    static_shapes = False


@pytest.mark.parametrize(("mode", "device", "world", "task", "expected"), [
    ("auto", "cpu", 1, Static, False),  # the CPU keeps today's eager loop
    ("auto", "cuda", 1, Static, True),
    ("on", "cpu", 1, Static, True),
    ("off", "cuda", 1, Static, False),
    ("on", "cuda", 2, Static, False),  # DDP's all-reduce is not captured
    ("on", "cuda", 1, Detection, False),  # per-image box counts: no static shapes
])
def test_which_runs_use_the_static_step(mode, device, world, task, expected):
    assert wants_static_step({"compile": mode}, torch.device(device), world, task()) is expected


def test_gpu_settings_apply_on_cuda_only_and_explicit_keys_win():
    cpu_cfg = run_config.for_device(run_config.resolve("cnn", "full"), "cpu")
    assert (cpu_cfg["batch_size"], cpu_cfg["lr"]) == (128, 3e-3)  # the CPU preset's numbers, unchanged
    gpu_cfg = run_config.for_device(run_config.resolve("cnn", "full"), "cuda")
    assert gpu_cfg["batch_size"] > cpu_cfg["batch_size"] and gpu_cfg["lr"] > cpu_cfg["lr"]
    assert run_config.GPU_KEY not in cpu_cfg and run_config.GPU_KEY not in gpu_cfg
    chosen = run_config.for_device(run_config.resolve("cnn", "full", ["batch_size=64"]), "cuda")
    assert chosen["batch_size"] == 64 and chosen["lr"] == gpu_cfg["lr"]
    with pytest.raises(UsageError, match=f"--set {run_config.GPU_KEY}: unknown key"):
        run_config.resolve("cnn", "full", [f"{run_config.GPU_KEY}=x"])
    assert run_config.GPU_KEY not in run_config.resolve("cnn", "smoke")  # no GPU section: the config as before


def test_gpu_settings_are_declared_keys_typed_and_bounded_by_the_one_config_type():
    # The preset's GPU settings go through the same pydantic type as every other value: a CUDA worker is never the
    # first to find a bad one, and the error names the key and its bound.
    base = run_config.preset_config("cnn", "full")
    for settings, error in (({"lr": -1.0}, "lr=-1.0: lr must be > 0"), ({"colour": 1}, "--set colour: unknown key"),
                            ({"batch_size": "many"}, "batch_size='many': expected int")):
        with pytest.raises(UsageError, match=error):
            run_config.check("cnn", {**base, run_config.GPU_KEY: settings})
    # `--set` text is converted by pydantic too: typed before the bounds are checked, as a sampled value is.
    assert run_config.resolve("cnn", "smoke", ["channels=8, 16", "augment=off", "lr=1e-3"])["channels"] == (8, 16)


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("model", models.model_names())
def test_every_gpu_config_is_valid(preset, model):
    run_config.check(model, run_config.for_device(run_config.preset_config(model, preset), "cuda"))


class Recorder(nn.Module):
    """A one-weight model; the task below records which training indices each step's batch held."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))


class RecordingTask:
    static_shapes = True

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def loss(self, model: nn.Module, indices: torch.Tensor) -> torch.Tensor:
        self.batches.append(indices.tolist())
        return model.weight * indices.float().mean()


@pytest.mark.parametrize(("size", "batch"), [(10, 4), (8, 4), (3, 4), (1, 1)])
def test_static_step_uses_every_sample_once_per_epoch(size, batch):
    model, task = Recorder(), RecordingTask()
    cfg = {**run_config.LOOP_DEFAULTS, "lr": 0.0}
    optimizer = make_optimizer(param_groups(model, cfg), cfg, CPU, static=True)
    steps = -(-size // batch)
    step = StaticStep(model, task, optimizer, lr_table([0.0], cfg, 2 * steps), 0, batch, 0.0, size, CPU)
    for epoch in range(2):
        task.batches.clear()
        order = torch.randperm(size, generator=torch.Generator().manual_seed(epoch))
        loss_sum = step.epoch(order)
        seen = [i for b in task.batches for i in b]
        assert sorted(seen) == list(range(size))  # each sample once, the tail included
        assert seen == order.tolist()  # in the epoch's order
        assert [len(b) for b in task.batches] == [batch] * (size // batch) + ([size % batch] if size % batch else [])
        assert float(loss_sum) == pytest.approx(sum(seen))  # the mean per batch, weighted by its size
        assert int(step.step) == (epoch + 1) * steps


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "constant"])
def test_lr_table_is_the_schedule(schedule):
    cfg = {**run_config.LOOP_DEFAULTS, "schedule": schedule}
    total = 40
    table = lr_table([1e-3, 1e-4], cfg, total)
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD([{"params": [model.weight], "lr": 1e-3}, {"params": [model.bias], "lr": 1e-4}])
    reference = make_schedule(optimizer, cfg, total)
    for row in table[:-1]:
        assert row.tolist() == pytest.approx([g["lr"] for g in optimizer.param_groups], rel=1e-6)
        optimizer.step()
        reference.step()
    assert table.shape == (total + 1, 2)


def small_data(n: int = 100) -> Mnist:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    return Mnist(images, labels, images[:20], labels[:20], images[:20], labels[:20])


@pytest.mark.parametrize(("optimizer", "schedule", "grad_clip"), [("adamw", "onecycle", 0.0), ("sgd", "cosine", 1.0)])
def test_static_step_trains_as_the_eager_loop_does(optimizer, schedule, grad_clip):
    """Same seed, same data, 2 epochs of 100 samples at batch 32 (a tail of 4): the same weights.

    The static step keeps beta1/momentum constant (a CUDA graph freezes them), so the eager loop here runs its
    schedule without the one-cycle momentum cycle too."""
    cfg = {**run_config.LOOP_DEFAULTS, **models.defaults("cnn"), "channels": (4, 8), "hidden": 16,
           "optimizer": optimizer, "schedule": schedule, "grad_clip": grad_clip, "batch_size": 32, "epochs": 2}
    data, epochs, total = small_data(), 2, 2 * 4
    orders = [torch.randperm(100, generator=torch.Generator().manual_seed(e)) for e in range(epochs)]
    torch.manual_seed(0)
    eager_model = place(models.build("cnn", cfg), CPU, cfg)
    static_model = place(models.build("cnn", cfg), CPU, cfg)
    static_model.load_state_dict(eager_model.state_dict())

    task = ClassificationTask(data, cfg, CPU)
    eager_opt = make_optimizer(param_groups(eager_model, cfg), cfg, CPU)
    schedule_ = make_schedule(eager_opt, cfg, total, cycle_momentum=False)
    torch.manual_seed(1)
    eager_losses = [float(run_epoch(eager_model, task, eager_opt, schedule_, o, 32, grad_clip)) for o in orders]

    static_opt = make_optimizer(param_groups(static_model, cfg), cfg, CPU, static=True)
    table = lr_table([g["lr"] for g in static_opt.param_groups], cfg, total)
    step = StaticStep(static_model, task, static_opt, table, 0, 32, grad_clip, 100, CPU)
    torch.manual_seed(1)
    static_losses = [float(step.epoch(o)) for o in orders]

    assert static_losses == pytest.approx(eager_losses, rel=1e-4)
    for (name, a), b in zip(eager_model.state_dict().items(), static_model.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name


def test_static_step_through_the_loop_reports_compile_time(mnist, tmp_path):
    result = train_locally("cnn", mnist, tmp_path, ["compile=on", "epochs=2"])
    assert result["config"]["compile"] == "on"
    assert result["compile_time_s"] == 0.0  # nothing is captured on a CPU
    assert result["test_accuracy"] > 0.5
    lrs = [h["lr"] for h in result["history"]]
    assert all(isinstance(lr, float) for lr in lrs) and lrs[-1] < lrs[0]  # the one-cycle schedule ran on


def test_a_capture_that_fails_on_this_cpu_falls_back_to_the_eager_step(capsys):
    """The capture path forced on the CPU fails for real: its warm-up asks CUDA for a stream (no driver here, or a
    CPU device on a GPU machine). The run trains on eagerly: every sample once, one warning line, the reason kept."""
    model, task = Recorder(), RecordingTask()
    cfg = {**run_config.LOOP_DEFAULTS, "lr": 0.0}
    optimizer = make_optimizer(param_groups(model, cfg), cfg, CPU, static=True)
    step = StaticStep(model, task, optimizer, lr_table([0.0], cfg, 2 * 6), 0, 4, 0.0, 21, CPU)
    step.capture = True
    for epoch in range(2):
        task.batches.clear()
        step.epoch(torch.randperm(21, generator=torch.Generator().manual_seed(epoch)))
        assert sorted(i for b in task.batches for i in b) == list(range(21))
        assert [len(b) for b in task.batches] == [4] * 4 + [5]  # a remainder of one folded into the last batch
    assert step.graph is None and not step.capture and int(step.step) == 2 * 5
    assert step.fallback.startswith("capture failed: ") and step.compile_time_s == 0.0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "this run trains with the eager step" in warnings[0]  # once, not per epoch


class StreamlessWarmUp(StaticStep):
    """The warm-up steps on the current stream (a CPU has no side streams), so that the capture itself is reached:
    torch.cuda.graph, which fails for real on this machine (no driver); on a GPU the task raises inside it."""

    def warm_up(self) -> None:
        for _ in range(3):
            self.eager(self.batch_offsets)

    def captured(self) -> torch.cuda.CUDAGraph:
        self.task.capturing = True
        try:
            return super().captured()
        finally:
            self.task.capturing = False


class FailsWhenCaptured(RecordingTask):
    """Raises under capture, as an op that synchronises with the host does."""

    capturing = False

    def loss(self, model: nn.Module, indices: torch.Tensor) -> torch.Tensor:
        if self.capturing:
            raise RuntimeError("operation not permitted when stream is capturing")
        return super().loss(model, indices)


def test_a_failed_capture_after_the_warm_up_keeps_the_warm_up_steps():
    model, task = Recorder(), FailsWhenCaptured()
    cfg = {**run_config.LOOP_DEFAULTS, "lr": 0.0}
    optimizer = make_optimizer(param_groups(model, cfg), cfg, CPU, static=True)
    step = StreamlessWarmUp(model, task, optimizer, lr_table([0.0], cfg, 8), 0, 4, 0.0, 28, CPU)
    step.capture = True
    step.epoch(torch.arange(28))
    seen = [i for b in task.batches for i in b]
    assert seen == list(range(28))  # 3 warm-up batches count, nothing is trained twice or skipped
    assert int(step.step) == 7 and step.fallback.startswith("capture failed: ")


def test_a_fallback_is_recorded_in_result_json(mnist, tmp_path, monkeypatch, capsys):
    from jobs.engine.train import static_step

    monkeypatch.setattr(static_step, "captures", lambda device: True)  # the GPU path, on this CPU: it fails
    result = train_locally("cnn", mnist, tmp_path, ["compile=on", "train_limit=129", "batch_size=16"])
    assert result["step_fallback"].startswith("capture failed: ") and result["test_accuracy"] > 0.1
    assert capsys.readouterr().err.count("warning: the captured CUDA step's capture failed") == 1
