"""What the loop trains with, built on the worker before its first epoch: the `Run` (data, task, model, optimizer,
schedule, captured step, clock, state), restored from the session's last checkpoint when there is one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import ray
import torch
from torch import nn

import models
from jobs.engine.config import for_device
from jobs.engine.data import batches
from jobs.engine.data.mnist import Mnist, limit
from jobs.engine.precision import resolve_precision
from jobs.engine.run_result import Evaluation, Metrics
from jobs.engine.tasks import Task, make_task
from jobs.engine.train.clock import TrainingClock
from jobs.engine.train.epoch import place
from jobs.engine.train.optim import lr_table, make_optimizer, make_schedule, param_groups
from jobs.engine.train.sessions import Session
from jobs.engine.train.state import CHECKPOINT_FILE, LoopState
from jobs.engine.train.static_step import StaticStep
from jobs.engine.train.summary import SUMMARY_FILE


class Lines(Protocol):
    """Where the epoch lines go for the driver to print: a Ray queue, or a thread's queue in a retrain's task."""

    def put(self, item: Metrics) -> None: ...


@dataclass(frozen=True)
class LoopRequest:
    """One run of the loop, as its launcher (jobs/engine/run/launch.py) asks for it."""

    model: str
    config: dict[str, Any]  # the validated flat config (jobs/engine/config.py)
    data: Mnist | ray.ObjectRef
    progress: Lines | None = None
    # When this worker began to hold its resources (a retrain's task knows it from its process); else now.
    held_since: str | None = None
    # After the last epoch, the test evaluation and the final measurements, reported with the finished run's
    # checkpoint. A search trial has no use for them: it reports its epochs and nothing else to Tune.
    evaluate_after: bool = True


@dataclass
class Run:
    """The run's parts, as the loop holds them; `model` is DDP's wrapper where there is one (`net` unwraps it)."""

    session: Session
    cfg: dict[str, Any]
    task: Task
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    step: StaticStep | None  # the captured step; None trains with the eager one
    clock: TrainingClock
    state: LoopState
    per_rank: int  # training images per rank and epoch
    steps_per_epoch: int
    progress: Lines | None
    resumed: bool  # restored from a checkpoint of its own
    finished: bool  # ... and that checkpoint is the finished run's: nothing is left to do
    last_val: Evaluation | None = None  # the last epoch's validation, for the summary

    @property
    def device(self) -> torch.device:
        return self.session.device

    @property
    def net(self) -> nn.Module:
        return self.model.module if isinstance(self.model, nn.parallel.DistributedDataParallel) else self.model


def prepare(request: LoopRequest, session: Session) -> Run:
    # When this worker began to hold its resources, for the sweep's timeline and cluster-busy figure: before the
    # data and the model are built, which the run holds its CPU/GPU for too. A restart keeps the first.
    started_at = request.held_since or datetime.now(UTC).isoformat()
    name, rank, world, device = request.model, session.rank, session.world, session.device
    # Ray may pin OMP_NUM_THREADS to 1; a CPU worker should use every core it reserved.
    torch.set_num_threads(session.cpus())
    torch.manual_seed(request.config["seed"] * 1_000 + rank)
    cfg = for_device(request.config, device.type)
    cfg["precision"] = resolve_precision(cfg["precision"], device, name)  # result.json records what ran

    data = worker_data(resolve_data(request.data), cfg).to(device)
    task = make_task(models.spec(name).task, data, cfg, device)
    model = place(models.build(name, cfg), device, cfg)
    static = wants_static_step(cfg, device, world, task)
    optimizer = make_optimizer(param_groups(model, cfg), cfg, device, static)
    per_rank = task.train_size // world
    # config.check_shares refuses this on the driver; a caller that skipped it stops here, before any step.
    if per_rank < batches.MIN_BATCH:
        raise ValueError(f"{task.train_size} training images over {world} worker(s) leave each fewer than "
                         f"{batches.MIN_BATCH}, a batch BatchNorm cannot train on")
    steps_per_epoch = batches.steps_per_epoch(per_rank, cfg["batch_size"])
    total_steps = steps_per_epoch * cfg["epochs"]
    # The peak learning rates, read before the schedule sets the first step's.
    lrs = lr_table([g["lr"] for g in optimizer.param_groups], cfg, total_steps) if static else None
    schedule = make_schedule(optimizer, cfg, total_steps, cycle_momentum=not static)
    restored = restore(session, model, optimizer, schedule)
    state, finished = restored or (LoopState(started_at=started_at), False)
    model = session.prepare_model(model)
    clock = TrainingClock(state.train_time_s, state.compile_time_s)
    step = None if lrs is None else StaticStep(model, task, optimizer, lrs, schedule.last_epoch, cfg["batch_size"],
                                               cfg["grad_clip"], per_rank, device, clock)
    return Run(session, cfg, task, model, optimizer, schedule, step, clock, state, per_rank, steps_per_epoch,
               request.progress, restored is not None, finished)


def restore(session: Session, model: nn.Module, optimizer: torch.optim.Optimizer,
            schedule: torch.optim.lr_scheduler.LRScheduler) -> tuple[LoopState, bool] | None:
    """Load the session's last checkpoint into MODEL, OPTIMIZER and SCHEDULE: its state, and whether it is a finished
    run's (its summary beside it); None without a checkpoint."""
    checkpoint = session.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        saved = torch.load(Path(folder) / CHECKPOINT_FILE, map_location=session.device, weights_only=False)
        finished = (Path(folder) / SUMMARY_FILE).is_file()
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["schedule"])
    return LoopState.from_saved(saved["state"]), finished


def resolve_data(data: Mnist | ray.ObjectRef) -> Mnist:
    """The run's MNIST: fetched from Ray's object store on a worker, or given as it is to a run without Ray (the
    tests' in-process session)."""
    return ray.get(data) if isinstance(data, ray.ObjectRef) else data


def wants_static_step(cfg: dict[str, Any], device: torch.device, world: int, task: Any) -> bool:
    """`compile`: off = the eager loop; on = the static step; auto = the static step on CUDA only.

    Detection has per-image box counts (no static shapes), and DDP's gradient all-reduce is not captured here,
    so those train eagerly whatever the key says."""
    if cfg["compile"] == "off" or world > 1 or not task.static_shapes:
        return False
    return cfg["compile"] == "on" or device.type == "cuda"


def worker_data(data: Mnist, cfg: dict[str, Any]) -> Mnist:
    data = limit(data, cfg["train_limit"], cfg["val_limit"], cfg["test_limit"])
    if cfg.get("train_on_val"):
        data.train_images = torch.cat([data.train_images, data.val_images])
        data.train_labels = torch.cat([data.train_labels, data.val_labels])
    return data
