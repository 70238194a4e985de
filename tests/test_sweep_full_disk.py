"""A sweep whose disk fills (issue 25, items 2 and 3): one `error:` line naming the folder and what is kept, exit
code 2, every record whole; after space is freed `--resume` continues from there, redoing a torn record. The disk is
real (a tiny tmpfs, tests/tiny_disk.py); the sweeps are the command's main() in this process, on the session's Ray."""

from __future__ import annotations

import json
import shutil

import pytest

import tune.sweep.orchestration
from jobs.engine.errors import run_cli
from jobs.engine.run.disk_full import DiskFull
from tests.reference_sweep import behind_a_dead_proxy, copy_of
from tests.tiny_disk import FILLER, fill, tiny_disk
from tune.sweep.orchestration import SweepRun, run_model
from tune.sweep.record import ModelStatus, Sweep
from tune.sweep.trials import TrialRecord

pytestmark = pytest.mark.process  # mount


def as_a_user(monkeypatch, tmp_path) -> None:
    """As where the reference sweep ran: no ImageNet weights and no way to download them."""
    for key, value in {**behind_a_dead_proxy(), "TORCH_HOME": str(tmp_path / "empty-torch-home")}.items():
        monkeypatch.setenv(key, value)
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)


def test_a_full_disk_stops_the_resume_of_a_torn_retrain_with_one_line_and_a_resume_after_space_is_freed_redoes_it(
        reference_sweep, ray_local, mnist_dir, tmp_path, capsys, monkeypatch):
    """The issue's case: after a disk-full error an empty result.json remained, and --resume called that retrain
    "already done, kept" and died with a JSONDecodeError traceback."""
    from jobs.sweep import main

    as_a_user(monkeypatch, tmp_path)
    folder = copy_of(reference_sweep, tmp_path) / reference_sweep.folder.name
    seed0 = folder / "final" / "cnn" / "seed0"
    recorded = json.loads((seed0 / "result.json").read_text())
    trials_before = (folder / "trials.json").read_bytes()
    (seed0 / "result.json").write_text("")  # what a disk-full error left before records were written whole
    shutil.rmtree(folder / "tune")  # a resume of a sweep whose searches ended needs no trial checkpoint at all
    aside = tmp_path / "seed0-files"
    shutil.move(seed0, aside)
    with tiny_disk(seed0, kib=8192) as disk:  # the retrain's own folder on a disk of its own, then filled up
        shutil.copytree(aside, disk, dirs_exist_ok=True)
        filler = fill(disk)
        with pytest.raises(SystemExit) as exited:
            run_cli(lambda: main(["--resume", str(folder), "--data-dir", str(mnist_dir)]))
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert exited.value.code == 2 and len(lines) == 1, out[-3000:] + err[-3000:]  # one line, no traceback
        (line,) = lines
        assert line.startswith("error: the disk is full: writing ") and f"kept in {folder}: 4 finished trial(s)" in line
        assert "2 finished retrain(s)" in line and f"python -m jobs.sweep --resume {folder}" in line
        assert f"{seed0 / 'result.json'}: torn record (empty), moved aside to {seed0 / 'result.json.torn-1'}" in out
        assert not (seed0 / "result.json").exists() and (seed0 / "result.json.torn-1").read_text() == ""
        assert json.loads((folder / "sweep.json").read_text())["status"]["cnn"]["status"] == "running"

        filler.unlink()  # space freed
        assert main(["--resume", str(folder), "--data-dir", str(mnist_dir)]) == 0
        out = capsys.readouterr().out
        assert "cnn: retraining the best configuration on train+validation, seed 0" in out
        assert "  cnn trial " not in out and "epoch " not in out  # no trial rerun; the finished retrain trains nothing
        redone = json.loads((seed0 / "result.json").read_text())
        assert redone["test_accuracy"] == recorded["test_accuracy"] and redone["history"] == recorded["history"]
        assert (seed0 / "result.json.torn-1").is_file() and not (seed0 / FILLER).exists()
    assert (folder / "trials.json").read_bytes() == trials_before  # the finished trials' records, byte for byte
    assert json.loads((folder / "sweep.json").read_text())["status"]["cnn"]["status"] == "ok"


def disk_full_run(tmp_path, output, monkeypatch, error: str | None) -> SweepRun:
    """A sweep of cnn whose search (already run) left one finished trial and one that failed with ERROR."""
    from tune.sweep.checks import configs_for

    trials = [TrialRecord("cnn", "t0", "ok", val_accuracy=0.9, config={"lr": 1e-3}, history=[{"epoch": 1}]),
              TrialRecord("cnn", "t1", "failed", error=error)]
    # The search's outcome, as Tune gave it.
    monkeypatch.setattr(tune.sweep.orchestration, "search", lambda *args: trials)
    sweep = Sweep(output=output, models=["cnn"], name="s", preset="smoke", storage=str(tmp_path / "storage"))
    return SweepRun(sweep, {"cnn": configs_for("cnn", "smoke", [])}, None, None, 1, "off")


def test_a_trial_that_filled_the_disk_inside_ray_stops_the_sweep_not_just_the_trial(ray_local, tmp_path, monkeypatch):
    """The trial's checkpoint write failed in its Ray worker; the driver sees only the text of its traceback."""
    run = disk_full_run(tmp_path, tmp_path / "sweep", monkeypatch,
                        "OSError: [Errno 28] No space left on device: '/storage/s/cnn/t1/checkpoint_000001'")
    (tmp_path / "sweep").mkdir()
    with pytest.raises(DiskFull, match=r"the disk is full: writing .*No space left on device.*; kept in "):
        run_model(run, "cnn")
    assert run.sweep.model_status("cnn") == ModelStatus()  # not recorded as the model's failure: a resume redoes it


def test_a_full_disk_under_the_drivers_own_record_stops_the_sweep_with_what_is_kept(ray_local, tmp_path,
                                                                                   monkeypatch):
    """sweep.json and trials.json on a real full disk: the driver's write fails, the records stay whole."""
    with tiny_disk(tmp_path / "sweep", kib=64) as output:
        run = disk_full_run(tmp_path, output, monkeypatch, "RuntimeError: injected failure at epoch 0")
        run.record()
        fill(output)
        with pytest.raises(DiskFull, match=f"writing {output}.*kept in {output}: 1 finished trial"):
            run_model(run, "cnn")
        assert json.loads((output / "sweep.json").read_text())["status"] == {}  # the last whole record


@pytest.mark.parametrize("keep", [False, True])
def test_trial_checkpoints_go_once_the_best_trial_is_chosen_unless_asked_to_keep_them(ray_local, tmp_path,
                                                                                      monkeypatch, keep):
    run = disk_full_run(tmp_path, tmp_path / "sweep", monkeypatch, "RuntimeError: injected failure at epoch 0")
    (tmp_path / "sweep").mkdir()
    run.sweep.keep_trial_checkpoints = keep
    checkpoint = tmp_path / "storage" / "s" / "cnn" / "cnn_trial_t0" / "checkpoint_000000" / "checkpoint.pt"
    results = tmp_path / "storage" / "s" / "cnn" / "cnn_trial_t0" / "result.json"
    for path in (checkpoint, results):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")

    def retrain_stops(*args, **kwargs):
        raise RuntimeError("the retrain is another test's")

    monkeypatch.setattr(tune.sweep.orchestration, "train_in_task", retrain_stops)
    run_model(run, "cnn")
    assert results.is_file() and checkpoint.is_file() == keep
    assert Sweep.load(tmp_path / "sweep", "--resume").keep_trial_checkpoints == keep  # a resume honours it
