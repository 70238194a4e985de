"""The Tune side of a sweep: each trial is a light driver that runs a TorchTrainer of the one loop."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.logger import TBXLoggerCallback
from ray.tune.schedulers import ASHAScheduler

from jobs import config as run_config
from jobs.cluster import Workers
from jobs.runner import make_trainer
from tune.search import search_algorithm

METRIC, MODE = "val_accuracy", "max"


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of one architecture shares; only the sampled keys differ between trials."""

    model: str
    base_config: dict[str, Any]
    data_ref: Any
    workers: Workers
    train_storage: str
    max_failures: int = 0


def trial_config(setup: TrialSetup, sampled: dict[str, Any]) -> dict[str, Any]:
    """The base config with the sampled keys applied exactly as `--set` would apply them, then validated."""
    pairs = [f"{k}={v}" for k, v in sampled.items()]
    return run_config.check(setup.model, run_config.apply_overrides(setup.base_config, pairs))


def run_trial(sampled: dict[str, Any], setup: TrialSetup) -> None:
    """The Tune trainable: validate the sample, then train it through Ray Train, reporting every epoch."""
    config = trial_config(setup, sampled)
    trial_id = tune.get_context().get_trial_id()
    trainer = make_trainer(setup.model, config, setup.data_ref, setup.workers, setup.train_storage,
                           name=trial_id, max_failures=setup.max_failures, callbacks=[TuneReportCallback()])
    trainer.fit()


class TrialLog(tune.Callback):
    """One readable line per finished, stopped or failed trial, instead of Tune's status tables."""

    def __init__(self, model: str, epochs: int) -> None:
        self.model, self.epochs, self.started = model, epochs, time.perf_counter()

    def _line(self, trial: Any, what: str) -> None:
        last = trial.last_result or {}
        acc = last.get(METRIC)
        acc_text = f"val acc {acc * 100:.2f}%" if acc is not None else "no result"
        print(f"  {self.model} trial {trial.trial_id}: {what}, {acc_text} after {last.get('epoch', 0)}/"
              f"{self.epochs} epochs ({time.perf_counter() - self.started:.0f}s into the search)", flush=True)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        epochs_run = (trial.last_result or {}).get("epoch", 0)
        self._line(trial, "finished" if epochs_run >= self.epochs else "stopped early by ASHA")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trial, "FAILED (recorded, the sweep goes on)")


def trainable(setup: TrialSetup) -> Any:
    # The trial itself only drives Ray Train, which reserves the real CPUs/GPUs for its workers.
    return tune.with_resources(tune.with_parameters(run_trial, setup=setup), {"cpu": 0, "memory": 256 * 2**20})


def make_tuner(setup: TrialSetup, search: str, samples: int, concurrency: int, storage: str,
               name: str, space: dict[str, Any], seed: int = 0) -> tune.Tuner:
    epochs = setup.base_config["epochs"]
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=epochs, grace_period=1, reduction_factor=2)
    return tune.Tuner(
        trainable(setup),
        param_space=space,
        tune_config=tune.TuneConfig(metric=METRIC, mode=MODE, scheduler=scheduler, num_samples=samples,
                                    search_alg=search_algorithm(search, METRIC, MODE, concurrency, seed)),
        run_config=tune.RunConfig(name=name, storage_path=storage, verbose=0,
                                  callbacks=[TrialLog(setup.model, epochs), TBXLoggerCallback()]),
    )


def restore_tuner(setup: TrialSetup, path: str) -> tune.Tuner:
    """Continue an interrupted search: finished trials keep their results and are not run again."""
    return tune.Tuner.restore(path, trainable=trainable(setup), resume_unfinished=True, resume_errored=False,
                              restart_errored=False)


def can_restore(path: str) -> bool:
    return tune.Tuner.can_restore(path)
