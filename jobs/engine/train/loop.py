"""The one training loop: plain PyTorch, for every architecture, on every Ray Train worker or in a sweep trial.

It reads in torchvision's order (references/classification/train.py): for each epoch, train it (with its validation
checks part-way through), evaluate it, save its checkpoint; after the last epoch, evaluate once (the test split and
the final measurements). Its session (jobs/engine/train/sessions.py) gives it a rank, a device and DDP; each
epoch's report carries the checkpoint that a restart by `FailureConfig`, or a retrain run again, resumes from.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.distributed as dist

from jobs.engine.data import batches
from jobs.engine.data.sharding import rank_slice
from jobs.engine.measure.final_evaluation import evaluate_final
from jobs.engine.run_result import Evaluation, Metrics
from jobs.engine.train.epoch import run_epoch
from jobs.engine.train.prepare import LoopRequest, Run, prepare
from jobs.engine.train.sessions import Session, TrainSession
from jobs.engine.train.state import CHECKPOINT_FILE
from jobs.engine.train.summary import SUMMARY_FILE, summarise


def train_func_per_worker(loop_config: dict[str, LoopRequest]) -> None:
    """Entry point of every Ray Train worker: Ray Train hands the loop its config as a dict, {"request": ...}."""
    run_loop(loop_config["request"], TrainSession())


def run_loop(request: LoopRequest, session: Session) -> None:
    """The loop itself, wherever it runs: a Ray Train worker, a single-worker sweep trial, or a retrain task
    (jobs/engine/train/sessions.py)."""
    run = prepare(request, session)
    for epoch in range(run.state.epoch, run.cfg["epochs"]):
        fail_if_injected(run, epoch)
        trained = train_one_epoch(run, epoch)
        if not math.isfinite(trained.loss):
            session.diverged(divergence(trained.loss, epoch, run.cfg))
            return
        metrics = evaluate(run, trained)
        save_checkpoint(run, metrics)
    if request.evaluate_after and not run.finished:
        evaluate_once(run)


class Trained(NamedTuple):
    """An epoch's mean training loss over every rank, and its training seconds."""

    loss: float
    seconds: float


def train_one_epoch(run: Run, epoch: int) -> Trained:
    """One pass over this rank's share of the training split, on the run's clock; the state counts it."""
    run.model.train()
    indices = rank_slice(run.task.train_size, run.cfg["seed"], epoch, run.session.rank, run.session.world)
    indices = indices.to(run.device)
    run.clock.start_epoch()
    if run.state.first_step_at is None:  # from the run's start to here: the start-up a trial pays
        run.state.first_step_at = datetime.now(UTC).isoformat()
    loss_sum = captured_epoch(run, indices) if run.step else eager_epoch(run, epoch, indices)
    loss = mean_over_ranks(loss_sum, run.per_rank, run.session.world)
    seconds = run.clock.end_epoch()
    state = run.state
    state.train_time_s, state.compile_time_s = run.clock.train_time_s, run.clock.compile_time_s
    state.train_images += run.per_rank * run.session.world
    state.epoch = epoch + 1
    return Trained(loss, seconds)


def captured_epoch(run: Run, indices: torch.Tensor) -> torch.Tensor:
    """The epoch by the static step (jobs/engine/train/static_step.py): one validation check, the epoch's own."""
    assert run.step is not None
    loss_sum = run.step.epoch(indices)
    for _ in range(run.steps_per_epoch):  # the host scheduler follows, for checkpoints and the reported lr
        run.schedule.step()
    if run.step.fallback:  # the captured step failed and this run went on eagerly: result.json says why
        run.state.step_fallback = run.step.fallback
    return loss_sum


def eager_epoch(run: Run, epoch: int, indices: torch.Tensor) -> torch.Tensor:
    """The epoch by the eager step, in `val_checks_per_epoch` parts with a validation check after each but the
    last (whose check is the epoch's own evaluation, with a checkpoint)."""
    cfg = run.cfg
    loss_sum = torch.zeros((), device=run.device)
    parts = check_parts(len(indices), cfg["batch_size"], cfg["val_checks_per_epoch"])
    for part, (begin, end) in enumerate(parts):
        loss_sum += run_epoch(run.model, run.task, run.optimizer, run.schedule, indices[begin:end],
                              cfg["batch_size"], cfg["grad_clip"])
        if part < len(parts) - 1:
            trained_s = run.clock.so_far()
            with run.clock.pause():  # the check is not training time
                check_within_epoch(run, epoch + end / len(indices),
                                   mean_over_ranks(loss_sum.clone(), end, run.session.world), trained_s)
    return loss_sum


def check_parts(size: int, batch_size: int, checks: int) -> list[tuple[int, int]]:
    """[begin, end) of the epoch's parts between validation checks, on the batch boundaries of
    jobs/engine/data/batches.py, so that the steps and the learning-rate schedule are those of one unbroken epoch (a
    folded remainder stays with its batch). At most CHECKS parts, never an empty one."""
    bounds = batches.batch_bounds(size, batch_size)
    if not bounds:
        return [(0, 0)]
    per_part = math.ceil(len(bounds) / min(checks, len(bounds)))
    return [(bounds[i][0], bounds[min(i + per_part, len(bounds)) - 1][1]) for i in range(0, len(bounds), per_part)]


def check_within_epoch(run: Run, epoch: float, train_loss: float, train_time_s: float) -> None:
    """A validation check part-way through an epoch (`val_checks_per_epoch`): reported without a checkpoint, so
    that ASHA has rungs to act on within a one-epoch trial; every rank reports (a barrier under Ray Train)."""
    if run.session.rank != 0:
        run.session.report({})
        return
    val = run.task.evaluate(run.net, "val")
    run.net.train()
    metrics: Metrics = {"epoch": round(epoch, 4), "train_time_s": train_time_s, "train_loss": train_loss,
                        "val_loss": val["loss"], "val_accuracy": val["accuracy"], "val_f1_macro": val["f1_macro"],
                        "first_step_at": run.state.first_step_at or ""}
    run.session.report(with_map(metrics, val))


def evaluate(run: Run, trained: Trained) -> Metrics | None:
    """Rank 0: the epoch's validation, as the epoch's report and history entry; the other ranks have none."""
    if run.session.rank != 0:
        return None
    val = run.last_val = run.task.evaluate(run.net, "val")
    state = run.state
    images = run.per_rank * run.session.world
    metrics: Metrics = {
        "epoch": state.epoch,
        "train_loss": trained.loss,
        "val_loss": val["loss"],
        "val_accuracy": val["accuracy"],
        "val_f1_macro": val["f1_macro"],
        "epoch_time_s": trained.seconds,
        "train_time_s": state.train_time_s,  # training seconds since the run began, at this check
        "images_per_s": images / trained.seconds if trained.seconds else 0.0,
        "lr": float(run.optimizer.param_groups[0]["lr"]),  # a tensor on the device for the static step
        "first_step_at": state.first_step_at or "",
    }
    state.history.append(with_map(metrics, val))
    return metrics


def with_map(metrics: Metrics, val: Evaluation) -> Metrics:
    """METRICS with the detector's mAP from its validation VAL (a classifier has none)."""
    for key in ("map_50", "map"):
        if key in val:
            metrics[key] = val[key]
    return metrics


def save_checkpoint(run: Run, metrics: Metrics | None) -> None:
    """Rank 0 reports the epoch with its checkpoint and sends its line; every rank reports, which under Ray Train
    is a barrier."""
    if metrics is None:
        run.session.report({})
        return
    if run.progress is not None:
        run.progress.put({**metrics, "epochs": run.cfg["epochs"]})
    with tempfile.TemporaryDirectory() as folder:
        write_checkpoint(run, Path(folder))
        run.session.report(metrics, folder)


def write_checkpoint(run: Run, folder: Path) -> None:
    torch.save({"model": run.net.state_dict(), "optimizer": run.optimizer.state_dict(),
                "schedule": run.schedule.state_dict(), "state": run.state.saved()}, folder / CHECKPOINT_FILE)


def evaluate_once(run: Run) -> None:
    """After the last epoch, once: the summary, the test evaluation and the final measurements, in a folder of the
    finished run's own, reported with the run's checkpoint (every rank reports: a barrier under Ray Train).

    Why a second report rather than files of the run's: a worker may be on another node than its driver, and what
    it reports is the only thing Ray Train carries to the run's storage; the driver finds them in the run's last
    checkpoint (jobs/engine/run/launch.py). The folder holds the weights again, so that the run's last
    checkpoint restores as any other: a rerun finds SUMMARY_FILE beside them and has nothing left to do."""
    if run.session.rank != 0:
        run.session.report({})
        return
    cfg, model = run.cfg, run.net
    # A run restored after its last epoch but before this report evaluates that epoch again, for the summary.
    summary = summarise(run.state, cfg, model, run.device, run.last_val or run.task.evaluate(model, "val"))
    last = run.state.history[-1]
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if cfg["evaluate_test"]:
            test = summary["test"] = run.task.evaluate(model, "test")
            # The last epoch's entry of result.json's history carries the test numbers too: a new dict, never the
            # one the epoch reported, which Ray Train may still hold unsent (its controller polls for reports; seen
            # under load: the epoch's own report arrived with these numbers in it).
            last = run.state.history[-1] = {**last, "test_accuracy": test["accuracy"],
                                            "test_f1_macro": test["f1_macro"], "test_loss": test["loss"]}
            summary.update(evaluate_final(model, run.task, cfg, run.device, folder, run.state.train_images))
        write_checkpoint(run, folder)
        (folder / SUMMARY_FILE).write_text(json.dumps(summary))
        run.session.report(last, str(folder))


def fail_if_injected(run: Run, epoch: int) -> None:
    """`fail_at_epoch`: raise once at the start of that epoch; the run restored from a checkpoint goes past it."""
    if epoch == run.cfg.get("fail_at_epoch", -1) and not run.resumed:
        if run.session.world > 1:
            wait_for_the_last_report()
        raise RuntimeError(f"injected failure at epoch {epoch} (fail_at_epoch)")


def wait_for_the_last_report() -> None:
    """Before an injected failure under Ray Train: wait two of its controller's polls and a second. The controller
    collects one report per worker per poll, and a poll that outlasts its interval on busy cores is left hanging;
    a worker group that fails meanwhile is restarted without the report, and so without that epoch's checkpoint
    (seen with the 0.25 s interval the test suite sets, on 2 loaded cores). A real failure can still lose the
    latest epoch this way; the injected one, which tests the restart from it, must not."""
    interval = float(os.environ.get("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "2"))  # Ray Train 2.60's default: 2 s
    time.sleep(2 * interval + 1)


def divergence(train_loss: float, epoch: int, cfg: dict[str, Any]) -> str:
    """One line saying where the run diverged and what to try."""
    clip = "lower grad_clip" if cfg["grad_clip"] > 0 else "set grad_clip (e.g. --set grad_clip=1.0)"
    return (f"training diverged: the loss is {train_loss} at epoch {epoch + 1} of {cfg['epochs']} (lr {cfg['lr']:g}, "
            f"{cfg['optimizer']}); try a lower lr (e.g. --set lr={cfg['lr'] / 10:g}) or {clip}")


def mean_over_ranks(loss_sum: torch.Tensor, per_rank: int, world: int) -> float:
    if world > 1 and dist.is_initialized():
        dist.all_reduce(loss_sum)
    return float(loss_sum) / max(per_rank * world, 1)
