"""The Ray Tune side of one architecture's search: its trainable, its Tuner (search algorithm and ASHA), and a
callback that prints and times each trial. How a trial trains is the engine's (jobs/engine/run/launch.py
`train_in_trial`). Ray's package is imported as `ray_tune`, never `tune`, which is this package's own name.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

import ray
from ray import tune as ray_tune
from ray.tune.experiment import Trial
from ray.tune.logger import TBXLoggerCallback
from ray.tune.registry import register_trainable
from ray.tune.schedulers import ASHAScheduler

from jobs.engine import config as run_config
from jobs.engine.run.cluster import Workers
from jobs.engine.run.disk_full import disk_full
from jobs.engine.run.launch import train_in_trial
from jobs.engine.run.lost_node import lost_node
from jobs.engine.train.progress import say
from models.registry import Config
from tune.sweep.cost_search import CostOf
from tune.sweep.search import Space, search_algorithm
from tune.sweep.study import StudyLog, StudyPlan, journal
from tune.sweep.trial_failures import OwnFailure, TrialRetries, record_own_failure, recorded_own_failure
from tune.sweep.trial_times import stamp
from tune.sweep.trials import short_reason

METRIC, MODE = "val_accuracy", "max"
REGISTRY_LOCK = threading.Lock()
# Times a trial that lost its node, worker process or actor is run again from its last checkpoint. A preemption
# Ray was told of (a drained spot node) is not counted at all (ray/tune/experiment/trial.py `_handle_ray_actor_error`).
NODE_LOSS_RETRIES = 2


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of one architecture shares; only the sampled keys differ between trials."""

    model: str
    base_config: Config
    data_ref: ray.ObjectRef
    workers: Workers
    train_storage: str


def trial_config(setup: TrialSetup, sampled: Config) -> Config:
    """The base config with the sampled values set, typed, then validated through the declared config."""
    return run_config.check(setup.model, run_config.with_values(setup.base_config, sampled))


def run_trial(sampled: Config, setup: TrialSetup) -> None:
    """The trial's trainable: validate the sampled point, then train it, reporting every epoch to Tune.

    Raises what the training raised. A failure of the trial's own (anything but a lost node, worker or actor) is
    recorded first, so that a rerun of the trial (a Tune retry, a resumed search) raises OwnFailure at once.
    """
    trial_id = ray_tune.get_context().get_trial_id()
    recorded = recorded_own_failure(setup.train_storage, trial_id)
    if recorded is not None:
        raise OwnFailure(recorded)
    try:
        train_in_trial(setup.model, trial_config(setup, sampled), setup.data_ref, setup.workers, setup.train_storage)
    except Exception as exc:
        # A lost node or a full disk is the cluster's fault, not the config's: a retry or a resume may succeed.
        if not lost_node(exc) and not disk_full(exc):
            reason = short_reason("".join(traceback.format_exception_only(exc)))
            record_own_failure(setup.train_storage, trial_id, reason or type(exc).__name__)
        raise


def trial_resources(workers: Workers) -> dict[str, float]:
    """What Tune reserves for one trial: its worker's share when it trains in place, else nothing but memory,
    since Ray Train reserves the CPUs/GPUs of its workers itself."""
    if workers.count > 1:
        return {"cpu": 0, "memory": 256 * 2**20}
    return {"cpu": workers.cpus_per_worker, **({"gpu": workers.gpus_per_worker} if workers.use_gpu else {})}


class TrialLog(ray_tune.Callback):
    """One readable line per finished, stopped or failed trial, instead of Tune's status tables.

    It also stamps when each trial started and ended on the driver's clock, in the trial's own folder
    (tune/sweep/trial_times.py): a restored Tuner runs an unpickled copy of this callback that the sweep never sees, and
    a resumed sweep runs in another process, so the stamps live with the trial, not in memory.
    """

    def __init__(self, model: str, epochs: int) -> None:
        self.model, self.epochs, self.started = model, epochs, time.perf_counter()

    def _line(self, trial: Trial, what: str) -> None:
        stamp(trial, "finished_at")
        last = trial.last_result or {}
        acc = last.get(METRIC)
        acc_text = f"val acc {acc * 100:.2f}%" if acc is not None else "no result"
        say(f"  {self.model} trial {trial.trial_id}: {what}, {acc_text} after {last.get('epoch', 0)}/"
            f"{self.epochs} epochs ({time.perf_counter() - self.started:.0f}s into the search)")

    def on_trial_start(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        stamp(trial, "started_at")

    def on_trial_complete(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        epochs_run = (trial.last_result or {}).get("epoch", 0)
        self._line(trial, "finished" if epochs_run >= self.epochs else "stopped early by ASHA")

    def on_trial_error(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self._line(trial, "FAILED (recorded, the sweep goes on)")


def trainable(setup: TrialSetup) -> str:
    """Register the architecture's trial function under a name of its own; Tuners get the name.

    Tune registers a trainable by name for the whole Ray job, so architectures searched at the same time must
    not share one, or one architecture's trials could start with another's setup. Tune's registry is not
    thread-safe, so each thread registers here under a lock rather than inside Tuner.fit() at the same time.
    """
    def trial(sampled: Config, setup: TrialSetup) -> None:
        run_trial(sampled, setup)

    name = trial.__name__ = trial.__qualname__ = f"{setup.model}_trial"
    with REGISTRY_LOCK:
        register_trainable(name, ray_tune.with_resources(ray_tune.with_parameters(trial, setup=setup),
                                                     trial_resources(setup.workers)))
    return name


def make_tuner(setup: TrialSetup, search: str, samples: int, concurrency: int, storage: str,
               name: str, space: Space, study: StudyPlan, seed: int = 0,
               watching: list[ray_tune.Callback] | None = None, cost: str | None = None) -> ray_tune.Tuner:
    """The Tuner of one architecture's search over SPACE (Tune domains, tune/sweep/search.py), its trials stored
    under STORAGE/NAME and written live into its Optuna study (tune/sweep/study.py)."""
    epochs = setup.base_config["epochs"]
    # One Tune iteration per validation check: a one-epoch trial with 4 checks gives ASHA rungs at 1, 2 and 4.
    checks = epochs * setup.base_config.get("val_checks_per_epoch", 1)
    # An Optuna search samples from the study itself; any other search's trials are added to it as they run.
    searcher = search_algorithm(search, METRIC, MODE, concurrency, seed,
                                (journal(study.path), setup.model) if search == "optuna" else None,
                                CostOf(setup.model, setup.base_config, cost) if cost else None)
    logs = [] if search == "optuna" else [StudyLog(setup.model, study.path, study.searched, METRIC, epochs)]
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=checks, grace_period=1, reduction_factor=2)
    return ray_tune.Tuner(
        trainable(setup),
        param_space=space,
        # reuse_actors: the next trial of this architecture starts in a process that has torch imported already.
        tune_config=ray_tune.TuneConfig(metric=METRIC, mode=MODE, scheduler=scheduler, num_samples=samples,
                                    search_alg=searcher,
                                    reuse_actors=True),
        # A trial keeps only its latest checkpoint: all a resume or a retry after a lost node needs. Every epoch's
        # checkpoint of every trial kept would fill a cluster's volume (a vgg16 one with AdamW state is ~1.5 GB).
        # A trial that loses its node is run again from its latest checkpoint on the nodes that remain; one that
        # failed for its own config fails again at once (tune/sweep/trial_failures.py).
        run_config=ray_tune.RunConfig(name=name, storage_path=storage, verbose=0,
                                      checkpoint_config=ray_tune.CheckpointConfig(num_to_keep=1),
                                      failure_config=ray_tune.FailureConfig(max_failures=NODE_LOSS_RETRIES),
                                      callbacks=[TrialLog(setup.model, epochs), TrialRetries(setup.model,
                                                 setup.train_storage), TBXLoggerCallback(), *logs,
                                                 *(watching or [])]),
    )


def restore_tuner(setup: TrialSetup, path: str) -> ray_tune.Tuner:
    """Continue an interrupted search: finished trials keep their results and are not run again; unfinished
    trials, and trials that errored (a lost node, or retries used up), continue from their latest checkpoint. A
    trial that failed for its own config is among the errored, and fails again at once (`run_trial`)."""
    return ray_tune.Tuner.restore(path, trainable=trainable(setup), resume_unfinished=True, resume_errored=True,
                              restart_errored=False)


def can_restore(path: str) -> bool:
    return ray_tune.Tuner.can_restore(path)
