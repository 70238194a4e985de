"""A tracker that goes away mid-sweep costs the sweep nothing: the observer and its Tune callbacks, against a real
MLflow server that the test stops, raise nothing, say so once and stop logging. Before that, a trial callback that
Tune pickled and restored (a resumed search) finds its sweep's runs again and adds no second run for a trial."""

from __future__ import annotations

import pickle
import time

import pytest
from ray.tune.experiment import Trial

from tests.mlflow_server import keep_no_proxy, nested, session_servers
from tune.sweep.record import Sweep
from tune.track.observer import MlflowObserver
from tune.track.tracker import Tracker

pytestmark = [pytest.mark.slow, pytest.mark.process]  # a server process of its own (the session's "to_stop"), stopped


def test_a_tracker_that_goes_away_is_said_once_and_the_sweep_goes_on(request, tmp_path, monkeypatch, capsys):
    keep_no_proxy(monkeypatch)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "outage")
    folder = tmp_path / "sweep-a"
    folder.mkdir()
    sweep = Sweep(output=folder, models=["cnn"], name="sweep-a", preset="smoke")
    sweep.save()
    server = session_servers(request.config)["to_stop"].wait()  # its own: stopped below
    observer = MlflowObserver(Tracker(server.uri), sweep)
    (callback,) = observer.trial_callbacks(sweep, "cnn")
    trial = Trial("cnn", config={"lr": 0.003}, trial_id="t0001", stub=True)
    callback.on_trial_start(0, [], trial)
    callback.on_trial_result(0, [], trial, {"training_iteration": 1, "val_accuracy": 0.5, "pid": 7})
    # What a resumed search runs: Tune's unpickled copy, no client in it, and the same trial started again.
    restored = pickle.loads(pickle.dumps(callback))
    assert set(vars(restored)) == {"key", "model"}
    restored.on_trial_start(0, [], trial)
    restored.on_trial_result(0, [], trial, {"training_iteration": 2, "val_accuracy": 0.75})
    observer.runs.drain()  # the callbacks hand their requests to the sweep's logging thread
    parent, children = nested(server, "outage")
    (run,) = children
    history = server.client().get_metric_history(run.info.run_id, "val_accuracy")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.5), (2, 0.75)]
    assert run.data.params == {"lr": "0.003"} and "pid" not in run.data.metrics
    server.stop()  # the tracker goes away mid-sweep

    started = time.monotonic()
    restored.on_trial_result(0, [], trial, {"training_iteration": 3, "val_accuracy": 0.8})
    restored.on_trial_complete(0, [], trial)
    observer.retrained(sweep, "cnn", 0)
    observer.finished(sweep)
    observer.report_written(sweep)
    took = time.monotonic() - started
    out = capsys.readouterr().out
    said = [line for line in out.splitlines() if "goes on without it" in line]
    assert len(said) == 1 and said[0].startswith(f"mlflow: {server.uri} failed ("), out
    assert "jobs.report FOLDER --mlflow" in said[0]
    assert took < 30, f"a tracker that went away held the sweep {took:.0f} s"
