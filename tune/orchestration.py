"""The steps of a sweep, per architecture: search, pick the best trial, retrain it with K seeds, report."""

from __future__ import annotations

import json
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
from jobs.engine.cluster import Workers, plan_workers
from jobs.engine.data import Mnist
from jobs.engine.errors import UsageError
from jobs.engine.launch import RESULT_FILE, environment, storage_path
from jobs.engine.launch_task import train_in_task
from jobs.engine.preflight import check_model_assets
from jobs.engine.progress import say
from tune.presets import CPUS_PER_TRIAL_WORKER, SWEEPS
from tune.resource_usage import cluster_busy
from tune.search import param_space
from tune.sweep_folder import LATEST
from tune.trials import best_trial, short_reason, trial_id, trial_record
from tune.tuner import TrialLog, TrialSetup, can_restore, make_tuner, restore_tuner


def trial_workers(count: int, gpu: str, gpu_share: float) -> tuple[Workers, int]:
    """Workers of one trial and how many trials fit on the cluster at once (never 0, so never a deadlock)."""
    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 1.0), total.get("GPU", 0.0)
    use_gpu = gpu == "on" or (gpu == "auto" and gpus > 0)
    workers = Workers(count, use_gpu, CPUS_PER_TRIAL_WORKER, gpu_share if use_gpu else 1.0)
    fits = int(cpus // (count * CPUS_PER_TRIAL_WORKER))
    if use_gpu:
        fits = min(fits, int(gpus // (gpu_share * count)))
    if fits < 1:
        raise UsageError(f"--workers {count}: one trial needs more than the cluster has ({cpus:g} CPU, {gpus:g} GPU)")
    return workers, fits


def search(sweep: Any, model: str, base: dict[str, Any], data_ref: Any, workers: Workers,
           fits: int) -> list[dict[str, Any]]:
    """Run (or continue) the Tune search of one architecture; returns its trial records."""
    plan = SWEEPS[sweep.preset]
    trial_base = {**base, **plan["trial"], **plan["trial_models"].get(model, {}), "evaluate_test": False}
    storage = storage_path(sweep.storage)
    setup = TrialSetup(model, trial_base, data_ref, workers, f"{storage}/{sweep.name}/{model}-runs")
    path = f"{storage}/{sweep.name}/{model}"
    space = searched_space(sweep, model)
    if can_restore(path):
        say(f"{model}: continuing its search from {path}")
        tuner = restore_tuner(setup, path)
    else:
        concurrency = min(fits, sweep.samples)
        say(f"{model}: searching {sweep.samples} sample(s) ({sweep.search}), {concurrency} trial(s) at a time, "
            f"{workers.count} worker(s) per trial on {'GPU' if workers.use_gpu else 'CPU'}")
        tuner = make_tuner(setup, sweep.search, sweep.samples, concurrency, storage, f"{sweep.name}/{model}",
                           space, sweep.search_seed)
    grid = tuner.fit()
    return [trial_record(model, result, list(space), trial_base["epochs"], workers.held(),
                         TrialLog.TIMES.get((model, trial_id(result)))) for result in grid]


def searched_space(sweep: Any, model: str) -> dict[str, Any]:
    """The Tune space of a model, without the keys this preset leaves at their defaults."""
    fixed = SWEEPS[sweep.preset]["keep_default"].get(model, [])
    return {k: v for k, v in param_space(model, sweep.search, sweep.spaces).items() if k not in fixed}


def retrain(sweep: Any, model: str, config: dict[str, Any], data_ref: Any, workers: Workers) -> list[dict[str, Any]]:
    """The best configuration on train+validation, one run per seed, each evaluated on the test set."""
    results = []
    for seed in range(sweep.seeds):
        folder = sweep.output / "final" / model
        existing = folder / f"seed{seed}" / RESULT_FILE
        if existing.is_file():
            say(f"{model}: seed {seed} already retrained, kept")
            continue
        say(f"{model}: retraining the best configuration on train+validation, seed {seed}")
        final = {**config, "seed": seed, "train_on_val": True, "evaluate_test": True}
        results.append(train_in_task(model, final, data_ref, workers, folder, f"seed{seed}",
                                     label=f"{model} seed {seed}: "))
    return results


@dataclass
class SweepRun:
    """What the architectures of one sweep share while they run at the same time, each in its own thread."""

    sweep: Any
    configs: dict[str, dict[str, Any]]
    search_ref: Any  # the data without its test images: all a search trial gets
    data_ref: Any
    workers: int
    gpu: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.perf_counter)
    done_before: float = 0.0  # wall time of the earlier runs of a resumed sweep

    def record(self, model: str | None = None, status: dict[str, Any] | None = None,
               records: list[dict[str, Any]] | None = None) -> None:
        """Change one architecture's part of sweep.json (if given) and write it with the wall time so far, one
        thread at a time: a driver killed later still leaves its time for --resume to add to."""
        with self.lock:
            if records is not None:
                self.sweep.trials = [t for t in self.sweep.trials if t["model"] != model] + records
            if model is not None:
                self.sweep.status[model] = status
            self.sweep.wall_time_s = self.done_before + time.perf_counter() - self.started
            self.sweep.save()


def run_model(run: SweepRun, model: str) -> None:
    """Search one architecture on data without test images, then retrain its best configuration."""
    sweep, base = run.sweep, run.configs[model]
    status = sweep.status.get(model, {})
    if status.get("status") == "ok" and all(
            (sweep.output / "final" / model / f"seed{s}" / RESULT_FILE).is_file() for s in range(sweep.seeds)):
        say(f"{model}: already done in this sweep, kept")
        return
    try:
        check_model_assets(model, base)
    except UsageError as exc:
        run.record(model, failed(str(exc)))
        say(f"{model}: cannot be trained here: {exc}")
        return
    workers, fits = trial_workers(run.workers, run.gpu, models.spec(model).gpu_share)
    records = search(sweep, model, base, run.search_ref, workers, fits)
    best = best_trial(records)
    n_failed = sum(r["status"] == "failed" for r in records)
    if best is None:
        reasons = {r["error"] for r in records if r["error"]}
        run.record(model, failed(f"every trial failed: {'; '.join(sorted(reasons))[:500]}", records), records)
        return
    running = {"status": "running", "reason": None, "best_config": best["config"], "best_trial_id": best["trial_id"],
               "best_val_accuracy": best["val_accuracy"], "trials": len(records), "failed_trials": n_failed}
    run.record(model, running, records)
    # The retrain takes a trial's share of the cluster, so that it starts as soon as one trial's worth is free
    # rather than waiting, behind the other architectures' trials, for the whole machine.
    one_worker = replace(workers, count=1)
    try:
        retrain(sweep, model, run_config.check(model, run_config.with_values(base, best["config"])), run.data_ref,
                one_worker)
        run.record(model, {**running, "status": "ok"})
    except Exception as exc:  # noqa: BLE001 - a model that fails is recorded, the sweep goes on
        run.record(model, {**running, "status": "failed", "reason": f"final retrain failed: {short_reason(exc)}"})


def failed(reason: str, records: list | None = None) -> dict[str, Any]:
    records = records or []
    return {"status": "failed", "reason": reason, "best_config": None, "best_trial_id": None,
            "best_val_accuracy": None, "trials": len(records), "failed_trials": sum(r["status"] == "failed"
                                                                                   for r in records)}


def retrains(sweep: Any) -> list[dict[str, Any]]:
    """The result.json of every retrain this sweep ran, for its cluster-busy figure."""
    return [json.loads(path.read_text()) for path in sorted((sweep.output / "final").glob(f"*/seed*/{RESULT_FILE}"))]


def without_test(data: Mnist) -> Mnist:
    """What search trials get: no test images at all, so no trial can choose its config by the test set."""
    return replace(data, test_images=data.test_images[:0], test_labels=data.test_labels[:0])


def run_sweep(sweep: Any, configs: dict[str, dict[str, Any]], data: Mnist, workers: int, gpu: str) -> None:
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
