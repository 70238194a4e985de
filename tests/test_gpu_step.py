"""The captured step on CUDA: it trains as the eager step does, and an epoch makes no host sync.

Skipped without a GPU (none was lent when these were written: they have not run yet)."""

import pytest
import torch

import models
from jobs.engine import config as run_config
from jobs.engine.tasks.classification import ClassificationTask
from jobs.engine.train.epoch import place
from jobs.engine.train.optim import lr_table, make_optimizer, param_groups
from jobs.engine.train.static_step import StaticStep
from tests.test_compile import small_data

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def trainer(capture: bool, size: int = 100, batch: int = 16) -> tuple[torch.nn.Module, StaticStep]:
    # No augmentation or dropout: a graph draws its random numbers from other offsets than eager code does.
    cfg = {**run_config.LOOP_DEFAULTS, **models.defaults("cnn"), "channels": (8, 16), "hidden": 32, "dropout": 0.0,
           "augment": False, "batch_size": batch, "grad_clip": 1.0}
    torch.manual_seed(0)
    model = place(models.build("cnn", cfg), CUDA, cfg)
    optimizer = make_optimizer(param_groups(model, cfg), cfg, CUDA, static=True)
    table = lr_table([g["lr"] for g in optimizer.param_groups], cfg, 3 * -(-size // batch))
    step = StaticStep(model, ClassificationTask(small_data(size).to(CUDA), cfg, CUDA), optimizer, table, 0, batch,
                      cfg["grad_clip"], size, CUDA)
    step.capture = capture
    return model, step


def test_captured_step_trains_as_the_eager_step_does():
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    orders = [torch.randperm(100, generator=torch.Generator().manual_seed(e)).to(CUDA) for e in range(3)]
    eager_model, eager = trainer(capture=False)
    graph_model, graphed = trainer(capture=True)
    eager_losses = [float(eager.epoch(o)) for o in orders]
    graph_losses = [float(graphed.epoch(o)) for o in orders]
    assert graphed.graph is not None and graphed.compile_time_s > 0 and eager.graph is None
    assert graph_losses == pytest.approx(eager_losses, rel=1e-3)
    for a, b in zip(eager_model.state_dict().values(), graph_model.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-3, rtol=1e-3)
    assert int(graphed.step) == 3 * 7  # 6 full batches and a tail of 4 per epoch


def test_an_epoch_makes_no_host_sync():
    _, step = trainer(capture=True)
    order = torch.randperm(100, device=CUDA)
    step.epoch(order)  # warm-up and capture
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss_sum = step.epoch(order)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(loss_sum)


def test_faster_rcnn_trains_a_step_on_cuda():
    from jobs.engine.tasks.detection import DetectionTask

    cfg = run_config.preset_config("faster_rcnn", "smoke")
    task = DetectionTask(small_data(120).to(CUDA), cfg, CUDA)
    model = models.build("faster_rcnn", cfg).to(CUDA).train()
    loss = task.loss(model, torch.arange(8, device=CUDA))
    loss.backward()
    assert torch.isfinite(loss)
    model.eval()
    result = task.evaluate(model, "val")
    assert 0 <= result["map"] <= 1
