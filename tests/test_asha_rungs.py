"""ASHA has rungs to act on in one-epoch trials: validation checks within an epoch, each a Tune iteration."""

from __future__ import annotations

import json

import pytest

from jobs.engine.loop import check_parts
from tests.test_sweep_faults import load, run_sweep, sweep_command, sweep_folders


def test_an_epoch_splits_on_batch_boundaries_into_at_most_the_checks_asked():
    assert check_parts(1000, 100, 4) == [(0, 300), (300, 600), (600, 900), (900, 1000)]
    assert check_parts(1000, 100, 1) == [(0, 1000)]
    assert check_parts(250, 100, 4) == [(0, 100), (100, 200), (200, 250)]  # 3 batches: no empty part
    assert check_parts(0, 64, 4) == [(0, 0)]
    for size, batch, checks in [(12_000, 64, 4), (1024, 16, 3), (999, 7, 5)]:
        parts = check_parts(size, batch, checks)
        assert parts[0][0] == 0 and parts[-1][1] == size and len(parts) <= checks
        assert all(begin % batch == 0 for begin, _ in parts)  # the same steps as one unbroken epoch
        assert sum((end - begin + batch - 1) // batch for begin, end in parts) == -(-size // batch)


@pytest.mark.slow
def test_asha_stops_weak_one_epoch_trials(tmp_path, mnist_dir):
    # Before: one report per epoch, so in one-epoch trials max_t equalled the grace period and ASHA stopped nothing.
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"cnn": {"lr": {"choice": [1e-5, 3e-3]}}}))  # lr 1e-5 stays near chance
    output = tmp_path / "out"
    proc = run_sweep(*sweep_command(output, "--samples", "6", "--space", str(space), "--set", "val_checks_per_epoch=4",
                                    "--data-dir", str(mnist_dir)))
    (sweep,) = sweep_folders(output)
    trials = load(sweep / "trials.json")
    stopped = [t for t in trials if t["status"] == "stopped"]
    assert stopped, [(t["config"], t["status"], t["epochs_run"]) for t in trials]
    assert all(t["epochs_run"] < 1 for t in stopped) and "stopped early by ASHA" in proc.stdout
    # A stopped trial's history has its checks within the epoch: fractional epochs, one report each.
    assert all(0 < h["epoch"] < 1 for t in stopped for h in t["history"])
    finished = [t for t in trials if t["status"] == "ok"]
    assert finished and all(len(t["history"]) == 4 for t in finished)
