"""The sweep's tracker, live (`MlflowObserver`, the sweep's observer: tune/sweep/observers.py) and afterwards
(`log_finished_sweep`, `jobs.report --mlflow`): the same runs, each logged once, whichever logs it first."""

from __future__ import annotations

import threading
from pathlib import Path

from jobs.engine.train.progress import say
from tune.sweep.record import Sweep
from tune.track.records import log_records, log_report, log_retrain
from tune.track.register import register_winner
from tune.track.runs import ACTIVE, SweepRuns, sweep_key
from tune.track.tracker import Tracker
from tune.track.trials import TrialRuns


class MlflowObserver:
    """Logs one sweep as it runs: its parent run when the first search starts, each trial from Tune's callbacks,
    each retrain when its result.json is whole, the rest of the records at the end, and (`report_written`) the
    report. Every call goes through the tracker's guard, so nothing raises into the sweep."""

    name = "mlflow"

    def __init__(self, tracker: Tracker, sweep: Sweep, register: str | None = None) -> None:
        self.runs = SweepRuns(tracker, sweep_key(sweep))
        self.register = register
        self._opening = threading.Lock()
        ACTIVE[self.runs.key] = self.runs  # what this sweep's Tune callbacks log to (tune/track/runs.py ACTIVE)

    def start(self, sweep: Sweep) -> str | None:
        """The parent run, made or found again (a resumed sweep's); running again until the report ends it."""
        def open_parent() -> str:
            with self._opening:  # the architectures' threads start their searches at once: one opens it, once
                if self.runs.parent_id is None:
                    parent = self.runs.parent(sweep)
                    self.runs.tracker.client().update_run(parent, status="RUNNING")
                    say(f"mlflow: logging this sweep to {self.runs.tracker.uri}, experiment "
                        f"{self.runs.tracker.experiment!r}, run {parent}")
            return self.runs.parent(sweep)
        return self.runs.tracker.attempt("the sweep's run", open_parent)

    def trial_callbacks(self, sweep: Sweep, model: str) -> list:
        self.start(sweep)
        return [TrialRuns(self.runs.key, model)]

    # What follows goes to the sweep's logging thread (SweepRuns.later): the retrain's thread goes on to its next
    # seed while its ONNX model and checkpoint are sent; the records are sent while the command writes the report.
    def retrained(self, sweep: Sweep, model: str, seed: int) -> None:
        if self.start(sweep) is not None:
            self.runs.later(f"{model} seed {seed}", lambda: log_retrain(self.runs, sweep, model, seed))

    def finished(self, sweep: Sweep) -> None:
        if self.start(sweep) is not None:
            self.runs.later("the sweep's records", lambda: log_records(self.runs, sweep))
        if self.register:
            self.runs.later("--register", lambda: register_winner(self.runs, sweep, self.register or ""))

    def report_written(self, sweep: Sweep) -> None:
        """The command wrote report.html and comparison.* (the sweep knows nothing of them): on the parent run,
        after everything queued before it; returns once all of it is sent (or the tracker failed)."""
        if self.runs.parent_id is not None:
            self.runs.later("the report", lambda: log_report(self.runs, sweep))
        self.runs.drain()
        ACTIVE.pop(self.runs.key, None)  # its searches are over: no callback asks for these runs again


def log_finished_sweep(tracker: Tracker, folder: Path, register: str | None = None) -> bool:
    """The finished sweep in FOLDER as the live sweep would have logged it, adding only the runs the tracker lacks;
    False when the tracker failed (said once)."""
    sweep = Sweep.load(folder, "jobs.report")
    runs = SweepRuns(tracker, sweep_key(sweep))

    def log_all() -> str:
        log_records(runs, sweep)
        if register:
            register_winner(runs, sweep, register)
        log_report(runs, sweep)
        return runs.parent(sweep)

    parent = tracker.attempt("the sweep's records", log_all)
    if parent is not None:
        say(f"mlflow: {folder.name} logged to {tracker.uri}, experiment {tracker.experiment!r}, run {parent} "
            f"({runs.made} nested runs added, {len(runs.children()) - runs.made} already there)")
    return parent is not None
