"""Each architecture's search as an Optuna study in the sweep folder, written live: what `make dashboard` serves.

Whatever the search algorithm, a study per architecture (named after it) in one journal file, `studies.journal`
(tune/sweep/folder.py STUDIES): a random or grid trial is added when it starts, with the configuration Tune
sampled, gets the validation accuracy of each check as an intermediate value, and ends complete (it ran every
epoch), pruned (ASHA stopped it) or failed, with the highest validation accuracy it reached as its value (the one
trials.json keeps). An Optuna search (`--search optuna`) samples from the study itself (`optuna_storage`), so a
resumed search continues it and the dashboard shows what its sampler saw.

The journal file storage, not SQLite: clusters share sweep folders over NFS, where SQLite's locks are unsafe;
Optuna's journal appends whole lines under an open(2)-based lock that NFS honours (JournalFileOpenLock; see
optuna/storages/journal/_file.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.trial import TrialState
from ray import tune as ray_tune

from jobs.engine.finite import finite_or_none
from jobs.engine.train.progress import say

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

TUNE_TRIAL_ID = "tune_trial_id"  # the user attribute that ties a study's trial to Tune's
ScalarValue = None | bool | int | float | str


@dataclass(frozen=True)
class StudyPlan:
    """Where an architecture's study lives (the sweep's journal file) and the distributions of its searched keys."""

    path: Path
    searched: dict[str, BaseDistribution]


def journal(path: Path) -> JournalStorage:
    """The journal storage at PATH (created on first write), locked in a way NFS honours."""
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def distributions(space: dict[str, dict[str, list[ScalarValue]]], grid: bool) -> dict[str, BaseDistribution]:
    """Optuna's distribution of each key of SPACE (tune/sweep/spaces.py's form: {key: {kind: args, "grid": [...]}});
    GRID: the values grid search runs, as categories. randint's upper bound is exclusive, as Tune's."""
    out: dict[str, BaseDistribution] = {}
    for key, entry in space.items():
        kind = next(k for k in entry if k != "grid")
        args = entry[kind]
        if grid or kind == "choice":
            out[key] = CategoricalDistribution(entry.get("grid", args) if grid else args)
        elif kind == "uniform":
            out[key] = FloatDistribution(float(args[0]), float(args[1]))
        elif kind == "loguniform":
            out[key] = FloatDistribution(float(args[0]), float(args[1]), log=True)
        else:  # randint
            out[key] = IntDistribution(int(args[0]), int(args[1]) - 1)
    return out


def open_study(storage: JournalStorage, model: str) -> optuna.Study:
    """MODEL's study in STORAGE, created when it is not there yet (maximising validation accuracy)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per study in the sweep's output
    return optuna.create_study(study_name=model, storage=storage, direction="maximize", load_if_exists=True)


class StudyLog(ray_tune.Callback):
    """Writes one architecture's random or grid trials into its study as they start, check and end (on the
    driver). A study that cannot be written costs the sweep nothing: it says so once and stops writing."""

    def __init__(self, model: str, path: Path, searched: dict[str, BaseDistribution], metric: str,
                 epochs: int) -> None:
        self.model, self.path, self.metric, self.epochs = model, Path(path), metric, epochs
        self.distributions = searched
        self._study: optuna.Study | None = None
        self._storage: JournalStorage | None = None
        self._ids: dict[str, int] = {}  # Tune's trial id -> the study's trial id
        self._broken = False

    def __getstate__(self) -> dict[str, object]:
        # Tune pickles its callbacks into the experiment's state for a resume: the open study stays behind.
        return {**self.__dict__, "_study": None, "_storage": None, "_ids": {}}

    def study(self) -> optuna.Study:
        if self._study is None:
            self._storage = journal(self.path)
            self._study = open_study(self._storage, self.model)
            # A resumed sweep: the trials this study already has are Tune's same trials, never added twice.
            self._ids = {t.user_attrs[TUNE_TRIAL_ID]: t._trial_id for t in self._study.get_trials(deepcopy=False)
                         if TUNE_TRIAL_ID in t.user_attrs}
        return self._study

    def storage(self) -> JournalStorage:
        self.study()
        assert self._storage is not None
        return self._storage

    def _write(self, what: str, action: Callable[[], object]) -> None:
        if self._broken:
            return
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - the dashboard's record is never worth a sweep
            self._broken = True
            say(f"{self.model}: its Optuna study in {self.path} could not be written ({what}: {exc}); the sweep "
                "goes on without it")

    def on_trial_start(self, iteration: int, trials: list, trial: Trial, **info: object) -> None:
        self._write("a new trial", lambda: self._add(trial))

    def _add(self, trial: Trial) -> None:
        study = self.study()
        if trial.trial_id in self._ids:
            return
        params = {k: trial.config[k] for k in self.distributions if k in trial.config}
        frozen = optuna.trial.create_trial(state=TrialState.RUNNING, params=params,
                                           distributions={k: self.distributions[k] for k in params},
                                           user_attrs={TUNE_TRIAL_ID: trial.trial_id})
        study.add_trial(frozen)
        self._ids[trial.trial_id] = study.get_trials(deepcopy=False)[-1]._trial_id

    def on_trial_result(self, iteration: int, trials: list, trial: Trial, result: dict, **info: object) -> None:
        value, step = finite_or_none(result.get(self.metric)), result.get("training_iteration")
        if value is None or step is None or trial.trial_id not in self._ids:
            return
        self._write("a check", lambda: self.storage().set_trial_intermediate_value(
            self._ids[trial.trial_id], int(step), float(value)))

    def on_trial_complete(self, iteration: int, trials: list, trial: Trial, **info: object) -> None:
        self._end(trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Trial, **info: object) -> None:
        self._end(trial, failed=True)

    def _end(self, trial: Trial, failed: bool) -> None:
        if trial.trial_id not in self._ids:
            return
        self._write("a finished trial", lambda: self._tell(trial, failed))

    def _tell(self, trial: Trial, failed: bool) -> None:
        storage, trial_id = self.storage(), self._ids[trial.trial_id]
        frozen = storage.get_trial(trial_id)
        if frozen.state.is_finished():
            return
        values = list(frozen.intermediate_values.values())
        # Complete when it ran every epoch, as trials.json says "ok" (tune/sweep/trials.py trial_record): a trial's
        # sampled config may change its checks per epoch, so the count of checks cannot tell.
        ran = (trial.last_result or {}).get("epoch") or 0
        if failed or not values:
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
        elif ran < self.epochs:  # ASHA stopped it between two checks
            storage.set_trial_state_values(trial_id, TrialState.PRUNED)
        else:
            storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [max(values)])
