"""The one training loop: plain PyTorch, for every architecture, on every Ray Train worker or in a sweep trial.

Its session (jobs/engine/train/sessions.py) gives it a rank, a device and DDP (`prepare_model`); each epoch it reports
metrics and a checkpoint, and after a restart by `FailureConfig` it resumes from the last checkpoint instead of starting
over.
"""

from __future__ import annotations

import json
import math
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ray
import torch
import torch.distributed as dist
from torch import nn

import models
from jobs.engine.config import for_device
from jobs.engine.data import batches
from jobs.engine.data.mnist import Mnist, limit
from jobs.engine.data.sharding import rank_slice
from jobs.engine.measure.final_evaluation import evaluate_final
from jobs.engine.precision import resolve_precision
from jobs.engine.tasks import make_task
from jobs.engine.train.cpus import usable_cpus
from jobs.engine.train.epoch import place, run_epoch
from jobs.engine.train.optim import lr_table, make_optimizer, make_schedule, param_groups
from jobs.engine.train.sessions import Session, TrainSession
from jobs.engine.train.static_step import StaticStep

CHECKPOINT_FILE = "checkpoint.pt"
SUMMARY_FILE = "summary.json"


def wait_for_the_last_report() -> None:
    """Before an injected failure under Ray Train: wait two of its controller's polls and a second. The controller
    collects one report per worker per poll, and a poll that outlasts its interval on busy cores is left hanging;
    a worker group that fails meanwhile is restarted without the report, and so without that epoch's checkpoint
    (seen with the 0.25 s interval the test suite sets, on 2 loaded cores). A real failure can still lose the
    latest epoch this way; the injected one, which tests the restart from it, must not."""
    interval = float(os.environ.get("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "2"))  # Ray Train 2.60's default: 2 s
    time.sleep(2 * interval + 1)


def train_func_per_worker(loop_config: dict[str, Any]) -> None:
    """Entry point of every Ray Train worker. `loop_config` holds: model, config, data (an ObjectRef)."""
    run_loop(loop_config, TrainSession())


def run_loop(loop_config: dict[str, Any], session: Session) -> None:
    """The loop itself, wherever it runs: a Ray Train worker, a single-worker sweep trial, or a retrain task
    (jobs/engine/train/sessions.py)."""
    # When this worker began to hold its resources, for the sweep's timeline and cluster-busy figure: before the
    # data and the model are built, which the run holds its CPU/GPU for too. A restart keeps the first.
    started_at = loop_config.get("held_since") or datetime.now(UTC).isoformat()
    name, cfg = loop_config["model"], loop_config["config"]
    rank, world, device = session.rank, session.world, session.device
    # Ray may pin OMP_NUM_THREADS to 1; a CPU worker should use every core it reserved.
    torch.set_num_threads(session.cpus())
    torch.manual_seed(cfg["seed"] * 1_000 + rank)
    cfg = for_device(cfg, device.type)
    cfg["precision"] = resolve_precision(cfg["precision"], device, name)  # result.json records what ran

    data = worker_data(resolve_data(loop_config["data"]), cfg).to(device)
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
    lrs = lr_table([g["lr"] for g in optimizer.param_groups], cfg, total_steps) if static else None
    schedule = make_schedule(optimizer, cfg, total_steps, cycle_momentum=not static)
    state = {"epoch": 0, "history": [], "train_time_s": 0.0, "train_images": 0, "compile_time_s": 0.0,
             "started_at": started_at}
    checkpoint = session.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            saved = torch.load(Path(folder) / CHECKPOINT_FILE, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        state = saved["state"]
    resumed = checkpoint is not None
    model = session.prepare_model(model)
    progress = loop_config.get("progress")
    step = StaticStep(model, task, optimizer, lrs, schedule.last_epoch, cfg["batch_size"], cfg["grad_clip"], per_rank,
                      device) if static else None

    for epoch in range(state["epoch"], cfg["epochs"]):
        if epoch == cfg.get("fail_at_epoch", -1) and not resumed:
            if world > 1:
                wait_for_the_last_report()
            raise RuntimeError(f"injected failure at epoch {epoch} (fail_at_epoch)")
        model.train()
        indices = rank_slice(task.train_size, cfg["seed"], epoch, rank, world).to(device)
        started = time.perf_counter()
        # How long the run took from its start to its first step (data, model, task): the start-up a trial pays.
        state.setdefault("first_step_at", datetime.now(UTC).isoformat())
        compiling = step.compile_time_s if step else 0.0
        if step:
            loss_sum = step.epoch(indices)
            for _ in range(steps_per_epoch):  # the host scheduler follows, for checkpoints and the reported lr
                schedule.step()
            if step.fallback:  # the captured step failed and this run went on eagerly: result.json says why
                state["step_fallback"] = step.fallback
        else:
            loss_sum = torch.zeros((), device=device)
            parts = check_parts(len(indices), cfg["batch_size"], cfg["val_checks_per_epoch"])
            for part, (begin, end) in enumerate(parts):
                loss_sum += run_epoch(model, task, optimizer, schedule, indices[begin:end], cfg["batch_size"],
                                      cfg["grad_clip"])
                if part < len(parts) - 1:  # the last part's check is the epoch's own report, with a checkpoint
                    paused = time.perf_counter()
                    check_within_epoch(session, unwrap(model), task, epoch + end / len(indices),
                                       mean_over_ranks(loss_sum.clone(), end, world), state,
                                       state["train_time_s"] + paused - started)
                    started += time.perf_counter() - paused  # the check is not training time
        train_loss = mean_over_ranks(loss_sum, per_rank, world)
        if not math.isfinite(train_loss):
            session.diverged(divergence(train_loss, epoch, cfg))
            return
        compiling = step.compile_time_s - compiling if step else 0.0
        epoch_time = time.perf_counter() - started - compiling  # the capture is reported apart, never hidden
        state["compile_time_s"] = state.get("compile_time_s", 0.0) + compiling
        state["train_time_s"] += epoch_time
        state["train_images"] += per_rank * world
        state["epoch"] = epoch + 1
        run = EpochEnd(session, cfg, unwrap(model), task, optimizer, schedule, state, device, progress)
        report(run, epoch, train_loss, epoch_time, per_rank * world)


def resolve_data(data: Mnist | ray.ObjectRef) -> Mnist:
    """The run's MNIST: fetched from Ray's object store on a worker, or given as it is to a run without Ray (the
    tests' in-process session)."""
    return ray.get(data) if isinstance(data, ray.ObjectRef) else data


def check_parts(size: int, batch_size: int, checks: int) -> list[tuple[int, int]]:
    """[begin, end) of the epoch's parts between validation checks, on the batch boundaries of
    jobs/engine/data/batches.py, so that the steps and the learning-rate schedule are those of one unbroken epoch (a
    folded remainder stays with its batch). At most CHECKS parts, never an empty one."""
    bounds = batches.batch_bounds(size, batch_size)
    if not bounds:
        return [(0, 0)]
    per_part = math.ceil(len(bounds) / min(checks, len(bounds)))
    return [(bounds[i][0], bounds[min(i + per_part, len(bounds)) - 1][1]) for i in range(0, len(bounds), per_part)]


def check_within_epoch(session: Session, model: nn.Module, task: Any, epoch: float,
                       train_loss: float, state: dict[str, Any], train_time_s: float) -> None:
    """A validation check part-way through an epoch (`val_checks_per_epoch`): reported without a checkpoint, so
    that ASHA has rungs to act on within a one-epoch trial; every rank reports (a barrier under Ray Train)."""
    if session.rank != 0:
        session.report({})
        return
    val = task.evaluate(model, "val")
    model.train()
    session.report({"epoch": round(epoch, 4), "train_time_s": train_time_s, "train_loss": train_loss,
                    "val_loss": val["loss"],
                    "val_accuracy": val["accuracy"], "val_f1_macro": val["f1_macro"],
                    "first_step_at": state["first_step_at"], **{k: v for k, v in val.items() if k.startswith("map")}})


def divergence(train_loss: float, epoch: int, cfg: dict[str, Any]) -> str:
    """One line saying where the run diverged and what to try."""
    clip = "lower grad_clip" if cfg["grad_clip"] > 0 else "set grad_clip (e.g. --set grad_clip=1.0)"
    return (f"training diverged: the loss is {train_loss} at epoch {epoch + 1} of {cfg['epochs']} (lr {cfg['lr']:g}, "
            f"{cfg['optimizer']}); try a lower lr (e.g. --set lr={cfg['lr'] / 10:g}) or {clip}")


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


def mean_over_ranks(loss_sum: torch.Tensor, per_rank: int, world: int) -> float:
    if world > 1 and dist.is_initialized():
        dist.all_reduce(loss_sum)
    return float(loss_sum) / max(per_rank * world, 1)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


@dataclass
class EpochEnd:
    """What the end of an epoch reports from: the run's parts, as the loop holds them."""

    session: Session
    cfg: dict[str, Any]
    model: nn.Module  # unwrapped from DDP
    task: Any
    optimizer: torch.optim.Optimizer
    schedule: Any
    state: dict[str, Any]
    device: torch.device
    progress: Any


def report(run: EpochEnd, epoch: int, train_loss: float, epoch_time: float, images: int) -> None:
    """Rank 0 evaluates and checkpoints; every rank reports, which under Ray Train is a barrier."""
    if run.session.rank != 0:
        run.session.report({})
        return
    val = run.task.evaluate(run.model, "val")
    metrics = {
        "epoch": epoch + 1,
        "train_loss": train_loss,
        "val_loss": val["loss"],
        "val_accuracy": val["accuracy"],
        "val_f1_macro": val["f1_macro"],
        "epoch_time_s": epoch_time,
        "train_time_s": run.state["train_time_s"],  # training seconds since the run began, at this check
        "images_per_s": images / epoch_time if epoch_time else 0.0,
        "lr": float(run.optimizer.param_groups[0]["lr"]),  # a tensor on the device for the static step
        "first_step_at": run.state["first_step_at"],
    }
    metrics.update({k: v for k, v in val.items() if k.startswith("map")})  # detection adds mAP
    run.state["history"].append(metrics)
    final = epoch + 1 == run.cfg["epochs"]
    with tempfile.TemporaryDirectory() as folder:
        torch.save({"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
                    "schedule": run.schedule.state_dict(), "state": run.state}, Path(folder) / CHECKPOINT_FILE)
        if final:
            summary = summarise(run, val)
            if run.cfg["evaluate_test"]:
                summary["test"] = run.task.evaluate(run.model, "test")
                metrics.update({f"test_{k}": summary["test"][k] for k in ("accuracy", "f1_macro", "loss")})
                summary.update(evaluate_final(run.model, run.task, run.cfg, run.device, Path(folder),
                                              run.state["train_images"]))
            (Path(folder) / SUMMARY_FILE).write_text(json.dumps(summary))
        if run.progress is not None:
            run.progress.put({**metrics, "epochs": run.cfg["epochs"], "train_time_s": run.state["train_time_s"]})
        run.session.report(metrics, folder)


def summarise(run: EpochEnd, val: dict[str, Any]) -> dict[str, Any]:
    """The rank-0 summary of a finished run; its keys that are RunResult fields (jobs/engine/run_result.py) go
    into result.json as they are."""
    state = run.state
    return {"history": state["history"], "train_time_s": state["train_time_s"],
            "compile_time_s": state.get("compile_time_s", 0.0), "step_fallback": state.get("step_fallback"),
            "config": run.cfg,
            "started_at": state.get("started_at"), "first_step_at": state.get("first_step_at"),
            "images_per_s": state["train_images"] / max(state["train_time_s"], 1e-9),
            "params": models.count_parameters(run.model), "peak_memory_mb": peak_memory_mb(run.device),
            "device": device_name(run.device), "validation": val, "best_epoch": best_epoch(state["history"])}


def best_epoch(history: list[dict[str, Any]]) -> int | None:
    """The 1-based epoch of the highest validation accuracy (the first of equals); None without history."""
    if not history:
        return None
    return max(history, key=lambda h: (h["val_accuracy"], -h["epoch"]))["epoch"]


def device_name(device: torch.device) -> str:
    """The GPU's name, or "cpu (2 cores, 1 thread)": the cores this process may use (its affinity mask, cgroup
    quota or SLURM allocation, jobs/engine/train/cpus.py; not the host's count) and the threads torch computes with."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cores, threads = usable_cpus(), torch.get_num_threads()
    return f"cpu ({cores} core{'s' if cores != 1 else ''}, {threads} thread{'s' if threads != 1 else ''})"
