"""The steps of a sweep, per architecture: search, pick the best trial, retrain it with K seeds, report."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ray

import models
from jobs.engine import config as run_config
from jobs.engine.cluster import Workers, plan_trial_workers, plan_workers
from jobs.engine.data import Mnist
from jobs.engine.errors import UsageError
from jobs.engine.launch import storage_path, train_in_task
from jobs.engine.preflight import check_model_assets
from jobs.engine.progress import say
from jobs.engine.run_result import RESULT_FILE, RunResult, environment
from tune.presets import CPUS_PER_TRIAL_WORKER, SWEEPS
from tune.resource_usage import cluster_busy
from tune.search import concurrency, param_space, planned_trials
from tune.sweep_folder import LATEST, seed_folder, seed_results
from tune.sweep_record import ModelStatus, Sweep
from tune.trials import TrialRecord, best_trial, short_reason, trial_id, trial_record
from tune.tuner import TrialLog, TrialSetup, can_restore, make_tuner, restore_tuner


def search(sweep: Sweep, model: str, base: dict[str, Any], data_ref: Any, workers: Workers,
           fits: int) -> list[TrialRecord]:
    """Run (or continue) the Tune search of one architecture; returns its trial records."""
    plan = SWEEPS[sweep.preset]
    trial_base = {**base, **plan["trial"], **plan["trial_models"].get(model, {}), "evaluate_test": False}
    storage = storage_path(sweep.tune_storage())
    setup = TrialSetup(model, trial_base, data_ref, workers, f"{storage}/{sweep.name}/{model}-runs")
    path = f"{storage}/{sweep.name}/{model}"
    space = searched_space(sweep, model)
    if can_restore(path):
        say(f"{model}: continuing its search from {path}")
        tuner = restore_tuner(setup, path)
    else:
        at_once = concurrency(space, sweep.samples, fits)
        trials = planned_trials(space, sweep.samples)
        say(f"{model}: searching {trials} trial(s) ({sweep.search}), {at_once} at a time, "
            f"{workers.count} worker(s) per trial on {'GPU' if workers.use_gpu else 'CPU'}")
        tuner = make_tuner(setup, sweep.search, sweep.samples, at_once, storage, f"{sweep.name}/{model}",
                           space, sweep.search_seed)
    grid = tuner.fit()
    return [trial_record(model, result, list(space), trial_base["epochs"], workers.held(),
                         TrialLog.TIMES.get((model, trial_id(result)))) for result in grid]


def searched_space(sweep: Sweep, model: str) -> dict[str, Any]:
    """The Tune space of a model, without the keys this preset leaves at their defaults."""
    fixed = SWEEPS[sweep.preset]["keep_default"].get(model, [])
    return {k: v for k, v in param_space(model, sweep.search, sweep.spaces).items() if k not in fixed}


def retrain(sweep: Sweep, model: str, config: dict[str, Any], data_ref: Any, workers: Workers) -> list[RunResult]:
    """The best configuration on train+validation, one run per seed, each evaluated on the test set."""
    results = []
    for seed in range(sweep.seeds):
        run_dir = seed_folder(sweep.output, model, seed)
        existing = run_dir / RESULT_FILE
        if existing.is_file():
            say(f"{model}: seed {seed} already retrained, kept")
            continue
        say(f"{model}: retraining the best configuration on train+validation, seed {seed}")
        final = {**config, "seed": seed, "train_on_val": True, "evaluate_test": True}
        results.append(train_in_task(model, final, data_ref, workers, run_dir.parent, run_dir.name,
                                     label=f"{model} seed {seed}: "))
    return results


@dataclass
class SweepRun:
    """What the architectures of one sweep share while they run at the same time, each in its own thread."""

    sweep: Sweep
    configs: dict[str, dict[str, Any]]
    search_ref: Any  # the data without its test images: all a search trial gets
    data_ref: Any
    workers: int
    gpu: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.perf_counter)
    done_before: float = 0.0  # wall time of the earlier runs of a resumed sweep

    def record(self, model: str | None = None, status: ModelStatus | None = None,
               records: list[TrialRecord] | None = None) -> None:
        """Change one architecture's part of sweep.json (if given) and write it with the wall time so far, one
        thread at a time: a driver killed later still leaves its time for --resume to add to."""
        with self.lock:
            if records is not None:
                self.sweep.trials = [t for t in self.sweep.trials if t.model != model] + records
            if model is not None and status is not None:
                self.sweep.status[model] = status
            self.sweep.wall_time_s = self.done_before + time.perf_counter() - self.started
            self.sweep.save()


def run_model(run: SweepRun, model: str) -> None:
    """Search one architecture on data without test images, then retrain its best configuration."""
    sweep, base = run.sweep, run.configs[model]
    if sweep.model_status(model).status == "ok" and all(
            (seed_folder(sweep.output, model, s) / RESULT_FILE).is_file() for s in range(sweep.seeds)):
        say(f"{model}: already done in this sweep, kept")
        return
    try:
        check_model_assets(model, base)
    except UsageError as exc:
        run.record(model, failed(str(exc)))
        say(f"{model}: cannot be trained here: {exc}")
        return
    workers, fits = plan_trial_workers(run.workers, run.gpu, models.spec(model).gpu_share,
                                       CPUS_PER_TRIAL_WORKER)
    records = search(sweep, model, base, run.search_ref, workers, fits)
    best = best_trial(records)
    if best is None:
        reasons = {r.error for r in records if r.error}
        run.record(model, failed(f"every trial failed: {'; '.join(sorted(reasons))[:500]}", records), records)
        return
    running = ModelStatus("running", None, best.config, best.trial_id, best.val_accuracy, len(records),
                          sum(r.status == "failed" for r in records))
    run.record(model, running, records)
    # The retrain takes a trial's share of the cluster, so that it starts as soon as one trial's worth is free
    # rather than waiting, behind the other architectures' trials, for the whole machine.
    one_worker = replace(workers, count=1)
    try:
        retrain(sweep, model, run_config.check(model, run_config.with_values(base, best.config)), run.data_ref,
                one_worker)
        run.record(model, replace(running, status="ok"))
    except Exception as exc:  # noqa: BLE001 - a model that fails is recorded, the sweep goes on
        run.record(model, replace(running, status="failed", reason=f"final retrain failed: {short_reason(exc)}"))


def failed(reason: str, records: list[TrialRecord] | None = None) -> ModelStatus:
    records = records or []
    return ModelStatus("failed", reason, trials=len(records), failed_trials=sum(r.status == "failed" for r in records))


def retrains(sweep: Sweep) -> list[RunResult]:
    """The result.json of every retrain this sweep ran, for its cluster-busy figure."""
    return [RunResult.read(path) for model in sweep.models for path in seed_results(sweep.output, model)]


def without_test(data: Mnist) -> Mnist:
    """What search trials get: no test images at all, so no trial can choose its config by the test set."""
    return replace(data, test_images=data.test_images[:0], test_labels=data.test_labels[:0])


def run_sweep(sweep: Sweep, configs: dict[str, dict[str, Any]], data: Mnist, workers: int, gpu: str) -> None:
    """Every architecture at once, each in a thread of its own with its own Tuner, search algorithm and ASHA:
    Ray shares the cluster among their trials and retrains, so no resource waits on another architecture's turn."""
    run = SweepRun(sweep, configs, ray.put(without_test(data)), ray.put(data), workers, gpu,
                   done_before=sweep.wall_time_s)
    sweep.env = environment(plan_workers(1, gpu), "see final results")
    run.record()
    with ThreadPoolExecutor(max_workers=len(sweep.models), thread_name_prefix="sweep") as pool:
        for done in [pool.submit(run_model, run, model) for model in sweep.models]:
            done.result()
    sweep.finished = datetime.now(UTC).isoformat(timespec="seconds")
    sweep.cluster_resources = {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}
    run.record()
    # Over every run of a resumed sweep: its wall time adds up the runs, and so do the trials and retrains.
    sweep.cluster_busy = cluster_busy(sweep.trials + retrains(sweep), sweep.wall_time_s, sweep.cluster_resources)
    sweep.save()
    from tune.report import write_report

    report = write_report(Path(sweep.output))
    busy = "" if sweep.cluster_busy is None else f", cluster busy {sweep.cluster_busy:.0%}"
    say(f"\n{report['summary']}\n\nreport: {report['files']['report_html']} (sweep took "
        f"{sweep.wall_time_s / 60:.1f} min{busy}; {LATEST}/ beside its folder points to the newest sweep)")
