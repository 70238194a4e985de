"""Each search trial as a nested run: its sampled configuration as parameters and every check's figures
(val_accuracy, val_loss, ...) as metrics at step = Tune's training_iteration. Live, from a Tune callback on the
driver (`TrialRuns`); afterwards, from trials.json (`log_trial_record`), the same run either way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray import tune as ray_tune

from tune.sweep.trials import HISTORY_KEYS, TrialRecord
from tune.track.runs import ACTIVE, SweepRuns, log_batch, numbers

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

def trial_key(model: str, trial_id: str) -> str:
    # The model too: Tune's trial ids are unique within one Tuner only, and architectures' Tuners made in the same
    # instant share a prefix (uuid1's clock: vit's and faster_rcnn's first trials were both 3f01a_00000).
    return f"trial/{model}/{trial_id}"


def trial_tags(model: str, trial_id: str) -> dict[str, str]:
    return {"archsweep.kind": "trial", "archsweep.model": model, "archsweep.trial_id": trial_id}


def check_metrics(check: dict[str, Any], step: int) -> list[tuple[str, float, int]]:
    # The figures trials.json keeps of a check, live and afterwards alike; Tune's own (time_this_iter_s, pid) left out.
    figures = numbers({k: v for k, v in check.items() if k in HISTORY_KEYS})
    return [(key, value, step) for key, value in figures.items()]


class TrialRuns(ray_tune.Callback):
    """MODEL's trials of the sweep KEY, logged as they start, check and end. Every call goes through the tracker's
    guard (an exception raised in a Tune callback would end the search); pickled with no client or connection."""

    def __init__(self, key: str, model: str) -> None:
        self.key, self.model = key, model

    def runs(self) -> SweepRuns | None:
        runs = ACTIVE.get(self.key)
        return None if runs is None or runs.tracker.down else runs

    # Each call hands its work to the sweep's logging thread (SweepRuns.later) with what it needs copied now: Tune's
    # loop goes on at once, and the thread logs a trial's start, checks and end in the order Tune gave them.
    def on_trial_start(self, iteration: int, trials: list, trial: Trial, **info: object) -> None:
        if (runs := self.runs()) is not None:
            trial_id, config = trial.trial_id, dict(trial.config)
            runs.later(f"{self.model}'s new trial", lambda: self._start(runs, trial_id, config))

    def _start(self, runs: SweepRuns, trial_id: str, config: dict[str, object]) -> None:
        key = trial_key(self.model, trial_id)
        if key in runs.children():  # a resumed search's trial continues its run; a whole one is never redone
            return
        run_id = runs.child(key, f"{self.model} {trial_id}", trial_tags(self.model, trial_id))
        log_batch(runs.tracker, run_id, params=config)

    def on_trial_result(self, iteration: int, trials: list, trial: Trial, result: dict, **info: object) -> None:
        runs, step = self.runs(), result.get("training_iteration")
        if runs is None or step is None:
            return
        key, metrics = trial_key(self.model, trial.trial_id), check_metrics(result, int(step))
        runs.later(f"{self.model}'s check", lambda: self._check(runs, key, metrics))

    @staticmethod
    def _check(runs: SweepRuns, key: str, metrics: list[tuple[str, float, int]]) -> None:
        run = runs.children().get(key) if runs.parent_id else None
        if run is not None:
            log_batch(runs.tracker, run.run_id, metrics)

    def on_trial_complete(self, iteration: int, trials: list, trial: Trial, **info: object) -> None:
        self._end(trial, "FINISHED")

    def on_trial_error(self, iteration: int, trials: list, trial: Trial, **info: object) -> None:
        self._end(trial, "FAILED")

    def _end(self, trial: Trial, status: str) -> None:
        if (runs := self.runs()) is not None:
            key = trial_key(self.model, trial.trial_id)
            runs.later(f"{self.model}'s finished trial", lambda: self._ended(runs, key, status))

    @staticmethod
    def _ended(runs: SweepRuns, key: str, status: str) -> None:
        if runs.parent_id and key in runs.children():
            runs.ended(key, status)


def log_trial_record(runs: SweepRuns, record: TrialRecord) -> None:
    """RECORD as its trial's run, unless a whole one is there (logged live, or by an earlier report)."""
    key = trial_key(record.model, record.trial_id)
    if runs.whole(key):
        return
    tags = {**trial_tags(record.model, record.trial_id), "archsweep.status": record.status}
    if record.error:
        tags["archsweep.error"] = record.error[:5000]
    run_id = runs.child(key, f"{record.model} {record.trial_id}", tags)
    # A check's step is its place in the history: Tune's training_iteration, 1 at the first check.
    points = [p for step, check in enumerate(record.history, start=1) for p in check_metrics(dict(check), step)]
    log_batch(runs.tracker, run_id, points, params=dict(record.config))
    runs.ended(key, "FAILED" if record.status == "failed" else "FINISHED")
