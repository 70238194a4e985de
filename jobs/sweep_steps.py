"""The steps of a sweep, per architecture: search, pick the best trial, retrain it with K seeds, report."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ray

from jobs.cluster import Workers, plan_workers
from jobs.data import Mnist
from jobs.errors import UsageError
from jobs.preflight import check_model_assets
from jobs.runner import RESULT_FILE, environment, storage_path, train
from tune.presets import SWEEPS
from tune.search import param_space
from tune.trials import best_trial, short_reason, trial_record
from tune.tuner import TrialSetup, can_restore, make_tuner, restore_tuner


def trial_workers(count: int, gpu: str, gpu_share: float) -> tuple[Workers, int]:
    """Workers of one trial and how many trials fit on the cluster at once (never 0, so never a deadlock)."""
    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 1.0), total.get("GPU", 0.0)
    use_gpu = gpu == "on" or (gpu == "auto" and gpus > 0)
    workers = Workers(count, use_gpu, 1.0, gpu_share if use_gpu else 1.0)
    fits = int(cpus // count)
    if use_gpu:
        fits = min(fits, int(gpus // (gpu_share * count)))
    if fits < 1:
        raise UsageError(f"--workers {count}: one trial needs more than the cluster has ({cpus:g} CPU, {gpus:g} GPU)")
    return workers, fits


def search(sweep: Any, model: str, base: dict[str, Any], data_ref: Any, gpu: str, workers_per_trial: int,
           gpu_share: float) -> list[dict[str, Any]]:
    """Run (or continue) the Tune search of one architecture; returns its trial records."""
    plan = SWEEPS[sweep.preset]
    trial_base = {**base, **plan["trial"], **plan["trial_models"].get(model, {}), "evaluate_test": False}
    workers, fits = trial_workers(workers_per_trial, gpu, gpu_share)
    storage = storage_path(sweep.storage)
    setup = TrialSetup(model, trial_base, data_ref, workers, f"{storage}/{sweep.name}/{model}-runs")
    path = f"{storage}/{sweep.name}/{model}"
    space = searched_space(sweep, model)
    if can_restore(path):
        print(f"{model}: continuing its search from {path}", flush=True)
        tuner = restore_tuner(setup, path)
    else:
        concurrency = min(fits, sweep.samples)
        print(f"{model}: searching {sweep.samples} sample(s) ({sweep.search}), {concurrency} trial(s) at a time, "
              f"{workers.count} worker(s) per trial on {'GPU' if workers.use_gpu else 'CPU'}", flush=True)
        tuner = make_tuner(setup, sweep.search, sweep.samples, concurrency, storage, f"{sweep.name}/{model}",
                           space, sweep.search_seed)
    grid = tuner.fit()
    return [trial_record(model, result, list(space), trial_base["epochs"]) for result in grid]


def searched_space(sweep: Any, model: str) -> dict[str, Any]:
    """The Tune space of a model, without the keys this preset leaves at their defaults."""
    fixed = SWEEPS[sweep.preset]["keep_default"].get(model, [])
    return {k: v for k, v in param_space(model, sweep.search, sweep.spaces).items() if k not in fixed}


def retrain(sweep: Any, model: str, config: dict[str, Any], data_ref: Any, gpu: str) -> list[dict[str, Any]]:
    """The best configuration on train+validation, one run per seed, each evaluated on the test set."""
    results = []
    for seed in range(sweep.seeds):
        folder = sweep.output / "final" / model
        existing = folder / f"seed{seed}" / RESULT_FILE
        if existing.is_file():
            print(f"{model}: seed {seed} already retrained, kept", flush=True)
            continue
        print(f"{model}: retraining the best configuration on train+validation, seed {seed}", flush=True)
        final = {**config, "seed": seed, "train_on_val": True, "evaluate_test": True}
        results.append(train(model, final, data_ref, plan_workers(1, gpu), folder, f"seed{seed}"))
    return results


def run_model(sweep: Any, model: str, base: dict[str, Any], data_ref: Any, workers: int, gpu: str,
              gpu_share: float) -> None:
    status = sweep.status.get(model, {})
    if status.get("status") == "ok" and all(
            (sweep.output / "final" / model / f"seed{s}" / RESULT_FILE).is_file() for s in range(sweep.seeds)):
        print(f"{model}: already done in this sweep, kept", flush=True)
        return
    try:
        check_model_assets(model, base)
    except UsageError as exc:
        sweep.status[model] = failed(str(exc))
        print(f"{model}: cannot be trained here: {exc}", flush=True)
        return
    records = search(sweep, model, base, data_ref, gpu, workers, gpu_share)
    sweep.trials = [t for t in sweep.trials if t["model"] != model] + records
    best = best_trial(records)
    n_failed = sum(r["status"] == "failed" for r in records)
    if best is None:
        reasons = {r["error"] for r in records if r["error"]}
        sweep.status[model] = failed(f"every trial failed: {'; '.join(sorted(reasons))[:500]}", records)
        return
    sweep.status[model] = {"status": "running", "reason": None, "best_config": best["config"],
                           "best_trial_id": best["trial_id"], "best_val_accuracy": best["val_accuracy"],
                           "trials": len(records), "failed_trials": n_failed}
    sweep.save()
    pairs = [f"{k}={v}" for k, v in best["config"].items()]
    from jobs import config as run_config

    try:
        retrain(sweep, model, run_config.apply_overrides(base, pairs), data_ref, gpu)
        sweep.status[model]["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 - a model that fails is recorded, the sweep goes on
        sweep.status[model].update(status="failed", reason=f"final retrain failed: {short_reason(exc)}")


def failed(reason: str, records: list | None = None) -> dict[str, Any]:
    records = records or []
    return {"status": "failed", "reason": reason, "best_config": None, "best_trial_id": None,
            "best_val_accuracy": None, "trials": len(records), "failed_trials": sum(r["status"] == "failed"
                                                                                   for r in records)}


def run_sweep(sweep: Any, configs: dict[str, dict[str, Any]], data: Mnist, workers: int, gpu: str,
              gpu_shares: dict[str, float]) -> None:
    started = time.perf_counter()
    done_before = sweep.wall_time_s
    data_ref = ray.put(data)
    sweep.env = environment(plan_workers(1, gpu), "see final results")
    sweep.save()
    for model in sweep.models:
        run_model(sweep, model, configs[model], data_ref, workers, gpu, gpu_shares.get(model, 1.0))
        sweep.wall_time_s = done_before + time.perf_counter() - started
        sweep.save()
    sweep.finished = datetime.now(UTC).isoformat(timespec="seconds")
    sweep.save()
    from jobs.report import write_report

    report = write_report(Path(sweep.output))
    print(f"\n{report['summary']}\n\nreport: {sweep.output / 'report.html'} "
          f"(sweep took {sweep.wall_time_s / 60:.1f} min)", flush=True)
