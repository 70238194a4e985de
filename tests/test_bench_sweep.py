"""`make bench-sweep` counts finished trials by the stamps the sweep writes (tune/sweep/trial_times.py), not by a
driver-side global: a trial whose end is stamped counts, one still running or cut short does not."""

import json

from jobs.bench_sweep import finished_trials
from tune.sweep.trial_times import TIMES_FILE


def test_finished_trials_are_the_stamped_ends_under_the_sweep(tmp_path):
    trials = tmp_path / "sweep" / "tune" / "sweep" / "cnn"
    stamps = {"a": {"started_at": "t0", "finished_at": "t1"}, "b": {"started_at": "t0"}, "c": None,
              "d": {"started_at": "t0", "finished_at": "t2"}}
    for trial, times in stamps.items():
        (trials / trial).mkdir(parents=True)
        (trials / trial / TIMES_FILE).write_text("{\"started_at" if times is None else json.dumps(times))
    assert finished_trials(tmp_path) == 2  # a and d; b still runs, c's stamp is being written
    assert finished_trials(tmp_path / "empty") == 0
