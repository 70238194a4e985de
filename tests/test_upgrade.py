"""Older sweep folders are read through tune/sweep/upgrade.py at load time, into this version's records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tune.sweep.record import Sweep
from tune.sweep.upgrade import read_result


def older_sweep_folder(tmp_path: Path) -> Path:
    """A sweep folder as an earlier version wrote it: an absolute default storage, keys since retired, a device
    in the plural."""
    folder = tmp_path / "moved" / "sweep-a"
    seed = folder / "final" / "cnn" / "seed0"
    seed.mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps({
        "models": ["cnn"], "name": "sweep-a", "storage": "/somewhere/else/sweep-a/tune", "retired_key": 1,
        "status": {"cnn": {"status": "ok", "best_val_accuracy": 0.9, "retired_too": True}}}))
    (folder / "trials.json").write_text(json.dumps([
        {"model": "cnn", "trial_id": "t0", "status": "ok", "val_accuracy": 0.9, "gone": [1, 2]}]))
    (seed / "result.json").write_text(json.dumps({
        "model": "cnn", "config": {"seed": 0}, "test_accuracy": 0.95,
        "serving": {"device_name": "cpu (2 cores, 1 threads)"},
        "env": {"device": "cpu (1 cores, 1 threads)", "ray": "2.9"}, "predictions_inline": [1, 2]}))
    return folder


def test_an_older_sweep_folder_reads_as_this_versions_records(tmp_path: Path) -> None:
    folder = older_sweep_folder(tmp_path)
    sweep = Sweep.load(folder, "jobs.report")
    assert sweep.storage == "" and sweep.tune_storage() == str(folder / "tune")  # moves with the folder
    assert sweep.model_status("cnn").best_val_accuracy == 0.9 and sweep.trials[0].trial_id == "t0"
    result = read_result(folder / "final" / "cnn" / "seed0" / "result.json")
    assert result.serving["device_name"] == "cpu (2 cores, 1 thread)"
    assert result.env["device"] == "cpu (1 core, 1 thread)" and result.env["ray"] == "2.9"
    assert result.test_accuracy == 0.95


def test_a_record_of_this_version_passes_unchanged(tmp_path: Path) -> None:
    folder = older_sweep_folder(tmp_path)
    sweep = Sweep.load(folder, "jobs.report")
    sweep.storage = "s3://bucket/sweep-a/tune"  # a URI is never rewritten
    sweep.save()
    again = Sweep.load(folder, "jobs.report")
    assert again.to_json() == sweep.to_json() and again.trials == sweep.trials


@pytest.mark.parametrize("text", ['{"config": {}}', '[]', '{"model": "cnn"}'])
def test_what_is_not_a_result_is_a_value_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "result.json"
    path.write_text(text)
    with pytest.raises(ValueError):
        read_result(path)
