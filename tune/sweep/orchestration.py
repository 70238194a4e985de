"""The steps of a sweep, per architecture: search, pick the best trial, retrain it with K seeds, report."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import ray

import models
from jobs.engine import config as run_config
from jobs.engine.data.mnist import Mnist
from jobs.engine.errors import UsageError
from jobs.engine.run.cluster import Workers, plan_trial_workers, plan_workers
from jobs.engine.run.disk_full import DiskFull, disk_full
from jobs.engine.run.launch import storage_path, train_in_task
from jobs.engine.run.preflight import check_model_assets
from jobs.engine.run_result import RESULT_FILE, RunResult, environment
from jobs.engine.train.finished_checkpoint import keep_weights_only
from jobs.engine.train.progress import say
from models.registry import Config
from tune.sweep.cost_search import config_cost
from tune.sweep.disk_need import disk_lines, gb
from tune.sweep.folder import STUDIES, seed_folder, seed_results
from tune.sweep.full_disk import stopped_by_full_disk, stops_on_a_full_disk
from tune.sweep.objectives import parse_objective
from tune.sweep.observers import Observers, SweepObserver
from tune.sweep.presets import CPUS_PER_TRIAL_WORKER, SWEEPS
from tune.sweep.record import ModelStatus, Sweep
from tune.sweep.resource_usage import cluster_busy
from tune.sweep.search import Space, concurrency, param_space, planned_trials
from tune.sweep.spaces import space_of
from tune.sweep.study import StudyPlan, distributions
from tune.sweep.torn_records import set_aside, why_torn
from tune.sweep.trial_checkpoints import remove_trial_checkpoints
from tune.sweep.trial_times import driver_times
from tune.sweep.trials import TrialRecord, best_trial, short_reason, trial_record, why_chosen
from tune.sweep.tuner import TrialSetup, can_restore, make_tuner, restore_tuner
from tune.sweep.upgrade import read_result


def search(sweep: Sweep, model: str, base: Config, data_ref: ray.ObjectRef, workers: Workers,
           fits: int, watchers: Observers | None = None) -> list[TrialRecord]:
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
        study = StudyPlan(sweep.output / STUDIES, distributions(searched_spec(sweep, model), sweep.search == "grid"))
        tuner = make_tuner(setup, sweep.search, sweep.samples, at_once, storage, f"{sweep.name}/{model}",
                           space, study, sweep.search_seed,
                           watchers.trial_callbacks(sweep, model) if watchers else [],
                           parse_objective(sweep.objective, None).cost)
    grid = tuner.fit()
    records = [trial_record(model, result, list(space), trial_base["epochs"], workers.held(), driver_times(result))
               for result in grid]
    cost = parse_objective(sweep.objective, None).cost
    for record in records if cost else []:
        record.cost = config_cost(model, trial_base, record.config, cost)
    return records


def searched_space(sweep: Sweep, model: str) -> Space:
    """The Tune space of a model, without the keys this preset leaves at their defaults."""
    searched = searched_spec(sweep, model)
    return {k: v for k, v in param_space(model, sweep.search, sweep.spaces).items() if k in searched}


def searched_spec(sweep: Sweep, model: str) -> dict[str, dict[str, list]]:
    """The searched keys of a model as tune/sweep/spaces.py writes them, without those the preset keeps."""
    fixed = SWEEPS[sweep.preset]["keep_default"].get(model, [])
    return {k: v for k, v in space_of(model, sweep.spaces).items() if k not in fixed}


# Where a retrain keeps its checkpoint, in its seed folder (jobs/engine/train/sessions.py TaskSession).
RETRAIN_CHECKPOINT = "checkpoint"


def retrain(sweep: Sweep, model: str, config: Config, data_ref: ray.ObjectRef,
            workers: Workers, watchers: Observers | None = None) -> list[RunResult]:
    """The best configuration on train+validation, one run per seed, each evaluated on the test set; WATCHERS
    are told of each seed's result.json, one a resume kept too."""
    watchers = watchers or Observers()
    results = []
    for seed in range(sweep.seeds):
        run_dir = seed_folder(sweep.output, model, seed)
        if finished_seed(sweep, model, seed):
            say(f"{model}: seed {seed} already retrained, kept")
            keep_weights_only(run_dir / RETRAIN_CHECKPOINT)  # a run killed before it dropped its optimizer state
            watchers.notify(lambda observer, seed=seed: observer.retrained(sweep, model, seed))
            continue
        say(f"{model}: retraining the best configuration on train+validation, seed {seed}")
        final = {**config, "seed": seed, "train_on_val": True, "evaluate_test": True}
        results.append(train_in_task(model, final, data_ref, workers, run_dir.parent, run_dir.name,
                                     label=f"{model} seed {seed}: "))
        # Its result.json written, nothing continues the run: its weights stay, its optimizer state goes.
        keep_weights_only(run_dir / RETRAIN_CHECKPOINT)
        watchers.notify(lambda observer, seed=seed: observer.retrained(sweep, model, seed))
    return results


def finished_seed(sweep: Sweep, model: str, seed: int) -> bool:
    """Whether MODEL's retrain with SEED has a whole result.json. A torn one is never trusted: it is named, moved
    aside and the retrain redone (from its last checkpoint: a finished run's costs no training)."""
    path = seed_folder(sweep.output, model, seed) / RESULT_FILE
    why = why_torn(path, read_result)
    if why is not None:
        set_aside(path, why)
    return why is None and path.is_file()


@dataclass
class SweepRun:
    """What the architectures of one sweep share while they run at the same time, each in its own thread."""

    sweep: Sweep
    configs: dict[str, Config]
    search_ref: ray.ObjectRef  # the data without its test images: all a search trial gets
    data_ref: ray.ObjectRef
    workers: int
    gpu: str
    watchers: Observers = field(default_factory=Observers)
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.perf_counter)
    done_before: float = 0.0  # wall time of the earlier runs of a resumed sweep

    def record(self, model: str | None = None, status: ModelStatus | None = None,
               records: list[TrialRecord] | None = None) -> None:
        """Change one architecture's part of sweep.json (if given) and write it with the wall time so far, one
        thread at a time: a driver killed later still leaves its time for --resume to add to."""
        with self.lock:
            if records is not None:
                # In the sweep's model order, whichever thread ends first: a resume that redoes one architecture's
                # step writes the same trials.json, byte for byte, as the run that it continues.
                place = {name: i for i, name in enumerate(self.sweep.models)}
                kept = [t for t in self.sweep.trials if t.model != model]
                self.sweep.trials = sorted(kept + records, key=lambda t: place.get(t.model, len(place)))
            if model is not None and status is not None:
                self.sweep.status[model] = status
            self.sweep.wall_time_s = self.done_before + time.perf_counter() - self.started
            self.sweep.save()


def run_model(run: SweepRun, model: str) -> None:
    """Search one architecture on data without test images, then retrain its best configuration."""
    try:
        search_and_retrain(run, model)
    except Exception as exc:
        if disk_full(exc) and not isinstance(exc, DiskFull):
            raise stopped_by_full_disk(run.sweep, exc) from None
        raise


def searched(sweep: Sweep, model: str) -> list[TrialRecord]:
    """MODEL's trial records when an earlier run of this sweep ended its search and chose its best trial, as
    recorded (a resume never rewrites them, and needs no trial checkpoint); [] when its search is still to do."""
    status, records = sweep.model_status(model), [t for t in sweep.trials if t.model == model]
    chosen = status.best_config is not None and any(t.trial_id == status.best_trial_id for t in records)
    return records if chosen and len(records) == status.trials else []


def search_and_retrain(run: SweepRun, model: str) -> None:
    sweep, base = run.sweep, run.configs[model]
    recorded = searched(sweep, model)
    if sweep.model_status(model).status == "ok" and recorded and all(
            finished_seed(sweep, model, s) for s in range(sweep.seeds)):
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
    if recorded:
        say(f"{model}: its search ended in an earlier run, kept; its best trial is {sweep.status[model].best_trial_id}")
    records = recorded or search(sweep, model, base, run.search_ref, workers, fits, run.watchers)
    if any(disk_full(r.error) for r in records):  # a trial's own writes (its checkpoints) filled the disk
        raise stopped_by_full_disk(sweep, next(r.error for r in records if disk_full(r.error)))
    objective = parse_objective(sweep.objective, None)
    best = best_trial(records, sweep.budget)
    if best is None:
        reasons = {r.error for r in records if r.error}
        run.record(model, failed(f"every trial failed: {'; '.join(sorted(reasons))[:500]}", records), records)
        return
    running = ModelStatus("running", None, best.config, best.trial_id, best.val_accuracy, len(records),
                          sum(r.status == "failed" for r in records),
                          why_chosen(best, objective.cost, sweep.budget))
    run.record(model, running, records)
    if not recorded and not sweep.keep_trial_checkpoints:
        storage = storage_path(sweep.tune_storage())
        freed = remove_trial_checkpoints([f"{storage}/{sweep.name}/{model}", f"{storage}/{sweep.name}/{model}-runs"])
        say(f"{model}: best trial chosen; its trials' checkpoints removed ({gb(freed)} freed; "
            "--keep-trial-checkpoints keeps them)")
    # The retrain takes a trial's share of the cluster, so that it starts as soon as one trial's worth is free
    # rather than waiting, behind the other architectures' trials, for the whole machine.
    one_worker = replace(workers, count=1)
    try:
        retrain(sweep, model, run_config.check(model, run_config.with_values(base, best.config)), run.data_ref,
                one_worker, run.watchers)
        run.record(model, replace(running, status="ok"))
    except Exception as exc:  # noqa: BLE001 - a model that fails is recorded, the sweep goes on
        if disk_full(exc):  # not the model's failure: the whole sweep stops (run_model)
            raise
        run.record(model, replace(running, status="failed", reason=f"final retrain failed: {short_reason(exc)}"))


def failed(reason: str, records: list[TrialRecord] | None = None) -> ModelStatus:
    records = records or []
    return ModelStatus("failed", reason, trials=len(records), failed_trials=sum(r.status == "failed" for r in records))


def retrains(sweep: Sweep) -> list[RunResult]:
    """The result.json of every retrain this sweep ran, for its cluster-busy figure."""
    return [read_result(path) for model in sweep.models for path in seed_results(sweep.output, model)]


def without_test(data: Mnist) -> Mnist:
    """What search trials get: no test images at all, so no trial can choose its config by the test set."""
    return replace(data, test_images=data.test_images[:0], test_labels=data.test_labels[:0])


def run_sweep(sweep: Sweep, configs: dict[str, Config], data: Mnist, workers: int, gpu: str,
              observers: Sequence[SweepObserver] = ()) -> None:
    """Every architecture at once, each in a thread of its own with its own Tuner, search algorithm and ASHA:
    Ray shares the cluster among their trials and retrains, so no resource waits on another architecture's turn.
    OBSERVERS (an experiment tracker: tune/sweep/observers.py) see each trial, retrain and the end.
    Ends with sweep.json complete; the command (jobs/sweep.py) then writes the report (tune/report/write.py).
    Raises DiskFull, one line, when the disk fills (tune/sweep/full_disk.py)."""
    storage = sweep.tune_storage()
    for line in disk_lines(configs, sweep.samples, sweep.seeds,
                           [sweep.output] + ([Path(storage)] if "://" not in storage else [])):
        say(line)
    with stops_on_a_full_disk(sweep):  # the driver's own writes: sweep.json, trials.json
        search_every_model(sweep, configs, data, workers, gpu, Observers(observers))


def search_every_model(sweep: Sweep, configs: dict[str, Config], data: Mnist, workers: int,
                       gpu: str, watchers: Observers) -> None:
    run = SweepRun(sweep, configs, ray.put(without_test(data)), ray.put(data), workers, gpu, watchers,
                   done_before=sweep.wall_time_s)
    sweep.env = environment(plan_workers(1, gpu), "see final results")
    run.record()
    with ThreadPoolExecutor(max_workers=len(sweep.models), thread_name_prefix="sweep") as pool:
        # Every architecture's thread ends before the first failure (a full disk) is raised.
        for done in [pool.submit(run_model, run, model) for model in sweep.models]:
            done.result()
    sweep.finished = datetime.now(UTC).isoformat(timespec="seconds")
    sweep.cluster_resources = {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}
    run.record()
    # Over every run of a resumed sweep: its wall time adds up the runs, and so do the trials and retrains.
    sweep.cluster_busy = cluster_busy(sweep.trials + retrains(sweep), sweep.wall_time_s, sweep.cluster_resources)
    sweep.save()
    watchers.notify(lambda observer: observer.finished(sweep))
