"""The disk a sweep uses and a disk that fills (issue 25, items 1-3), on small folders, without Ray: trial
checkpoints removed and their results kept, a finished retrain's checkpoint without its optimizer state, the
estimate said before training, records written whole on a real full disk (a tiny tmpfs), torn records named and
moved aside, and ENOSPC recognised wherever it is raised."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch

import models
from jobs.engine.atomic import write_atomically
from jobs.engine.measure.checkpoint_size import checkpoint_bytes, optimizer_copies, parameter_count, weights_bytes
from jobs.engine.run.disk_full import disk_full
from jobs.engine.run_result import RunResult
from jobs.engine.train.finished_checkpoint import keep_weights_only
from jobs.engine.train.state import CHECKPOINT_FILE
from tests.tiny_disk import fill, tiny_disk
from tune.sweep.disk_need import disk_lines, full_preset_need, model_need, sweep_need
from tune.sweep.folder import seed_results, torn_seed_results
from tune.sweep.record import Sweep
from tune.sweep.torn_records import set_aside, why_torn
from tune.sweep.trial_checkpoints import remove_trial_checkpoints


def write(path: Path, content: bytes | str = b"x" * 1000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize("as_uri", [False, True])
def test_trial_checkpoints_go_and_every_result_file_stays(tmp_path, as_uri):
    """A Tune experiment and its trials' Ray Train storage, as a sweep leaves them; a URI goes through pyarrow.fs."""
    experiment, runs = tmp_path / "tune" / "s" / "cnn", tmp_path / "tune" / "s" / "cnn-runs"
    kept = [write(experiment / "cnn_trial_a" / name) for name in
            ("result.json", "progress.csv", "params.json", "events.out.tfevents.1", "driver_times.json")]
    kept += [write(runs / "own-failures" / "b.txt"), write(experiment / "experiment_state-1.json"),
             write(runs / "b" / "checkpoint_manager_snapshot.json")]
    removed = [write(experiment / "cnn_trial_a" / "checkpoint_000003" / "checkpoint.pt", b"w" * 5000),
               write(runs / "b" / "checkpoint_000001" / "checkpoint.pt", b"w" * 7000),
               write(runs / "b" / "checkpoint_000001" / "nested" / "checkpoint_000009" / "x", b"w" * 11)]
    roots = [f"file://{p}" if as_uri else str(p) for p in (experiment, runs, tmp_path / "never-made")]
    assert remove_trial_checkpoints(roots) == 12_011
    assert all(p.is_file() for p in kept) and not any(p.exists() for p in removed)
    assert not list(tmp_path.rglob("checkpoint_0*"))
    assert remove_trial_checkpoints(roots) == 0  # nothing left to remove


def saved_like_the_loop(folder: Path, optimizer_name: str = "adamw") -> tuple[dict, Path]:
    """A cnn checkpoint as jobs/engine/train/loop.py saves one after a training step: weights, optimizer state,
    schedule."""
    config = {**models.defaults("cnn"), "optimizer": optimizer_name, "momentum": 0.9}
    model = models.build("cnn", config)
    optimizer = (torch.optim.AdamW(model.parameters(), lr=1e-3) if optimizer_name == "adamw"
                 else torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    model(torch.randn(2, 1, 28, 28)).sum().backward()
    optimizer.step()
    schedule.step()
    saved = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
             "state": {"epoch": 1, "history": []}}
    folder.mkdir(parents=True)
    torch.save(saved, folder / CHECKPOINT_FILE)
    return saved, folder / CHECKPOINT_FILE


def test_a_finished_retrain_keeps_its_weights_not_its_optimizer_state_and_the_loop_can_still_load_it(tmp_path):
    saved, path = saved_like_the_loop(tmp_path / "checkpoint")
    before = path.stat().st_size
    freed = keep_weights_only(path.parent)
    after = torch.load(path, weights_only=False)
    # AdamW keeps two tensors the size of the weights: the file drops to about a third.
    assert freed == before - path.stat().st_size and path.stat().st_size < 0.4 * before
    assert after["optimizer"]["state"] == {} and after["state"] == saved["state"]
    assert all(torch.equal(after["model"][k], v) for k, v in saved["model"].items())
    # What the loop does with a checkpoint it resumes from (jobs/engine/train/loop.py run_loop): it still loads.
    model = models.build("cnn", models.defaults("cnn"))
    model.load_state_dict(after["model"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    optimizer.load_state_dict(after["optimizer"])
    torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0).load_state_dict(after["schedule"])
    assert keep_weights_only(path.parent) == 0 and keep_weights_only(tmp_path / "none") == 0  # once; or none


def test_the_estimate_counts_parameters_without_allocating_them_and_optimizer_copies():
    config = models.defaults("cnn")
    assert parameter_count("cnn", config) == models.count_parameters(models.build("cnn", config))
    assert weights_bytes("cnn", config) == 4 * parameter_count("cnn", config)
    assert checkpoint_bytes("cnn", {**config, "optimizer": "adamw"}) == 3 * weights_bytes("cnn", config)
    assert optimizer_copies({"optimizer": "sgd", "momentum": 0.9}) == 1
    assert optimizer_copies({"optimizer": "sgd", "momentum": 0.0}) == 0
    # vgg16 on the meta device: 134 M parameters, no 528 MB weights file read and no memory for them.
    vgg = {**models.defaults("vgg16"), "weights": "imagenet"}
    assert 1.5e9 < checkpoint_bytes("vgg16", vgg) < 1.7e9  # the issue's ~1.5 GB with AdamW state
    full = full_preset_need()
    assert 30e9 < full < 50 * 2**30, full  # the six architectures of the full preset fit k8s/base/pvc.yaml's 50 Gi
    configs = {"cnn": config, "vit": models.defaults("vit")}
    assert sweep_need(configs, 2, 1) == model_need("cnn", config, 2, 1) + model_need("vit", configs["vit"], 2, 1)


@pytest.mark.process  # mount
def test_the_sweep_says_what_it_needs_and_warns_when_a_folder_has_less_free(tmp_path):
    configs = {"cnn": models.defaults("cnn")}
    roomy = disk_lines(configs, 2, 1, [tmp_path])
    assert len(roomy) == 1 and roomy[0].startswith("disk: this sweep needs at most ") and str(tmp_path) in roomy[0]
    with tiny_disk(tmp_path / "small", kib=256) as small:
        lines = disk_lines(configs, 2, 1, [tmp_path, small])
    assert len(lines) == 2 and lines[1].startswith(f"warning: {small} has ") and "--resume" in lines[1]


@pytest.mark.process  # mount
def test_a_full_disk_leaves_every_record_whole_and_says_enospc(tmp_path):
    """A real ENOSPC: the previous record stays as it was, a new one is not left empty or half-written."""
    with tiny_disk(tmp_path / "disk", kib=128) as disk:
        write_atomically(disk / "sweep.json", {"models": ["cnn"]})
        fill(disk, leave=1024)
        with pytest.raises(OSError) as raised:
            write_atomically(disk / "sweep.json", {"models": ["cnn"], "padding": "x" * 20_000})
        assert disk_full(raised.value)
        assert json.loads((disk / "sweep.json").read_text()) == {"models": ["cnn"]}
        result = RunResult("cnn", {"lr": 1.0}, test_predictions=list(range(5000)))
        with pytest.raises(OSError) as raised:
            result.write(disk / "final" / "cnn" / "seed0" / "result.json")
        assert raised.value.errno == errno.ENOSPC
        # Before: an empty result.json stayed, which a resume called "already retrained" and then could not read.
        assert not (disk / "final" / "cnn" / "seed0" / "result.json").exists()
        assert [p.name for p in (disk / "final" / "cnn" / "seed0").iterdir()] == []  # no temporary file left either


def test_disk_full_is_recognised_as_an_oserror_a_cause_or_a_remote_traceback_and_nothing_else():
    assert disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))  # a used-up quota is the same to the user
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/x/checkpoint.pt")
        except OSError as exc:
            raise RuntimeError("saving the checkpoint failed") from exc
    except RuntimeError as wrapped:
        assert disk_full(wrapped)
    # A Tune trial's error reaches the driver as the text of its remote traceback (trials.json `error`).
    assert disk_full("OSError: [Errno 28] No space left on device: '/storage/s/cnn/trial/checkpoint_000001'")
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not disk_full("RuntimeError: injected failure at epoch 0 (fail_at_epoch)") and not disk_full(None)


@pytest.mark.parametrize(("content", "why"), [
    ("", "empty"),
    ('{"model": "cnn", "config": {"lr"', "not whole JSON"),  # a copy that stopped half-way
    ('["cnn"]', "not the right type"),  # edited by hand
    ('{"model": 3, "config": []}', "not the right type"),
    (b"\xff\xfe\x00", "not text"),
])
def test_a_torn_result_is_named_moved_aside_never_deleted_and_left_out(tmp_path, content, why, capsys):
    good = write(tmp_path / "final" / "cnn" / "seed0" / "result.json", json.dumps({"model": "cnn", "config": {}}))
    torn = write(tmp_path / "final" / "cnn" / "seed1" / "result.json", content)
    assert why_torn(good, RunResult.read) is None and why_torn(tmp_path / "missing.json", RunResult.read) is None
    assert why_torn(torn, RunResult.read).startswith(why)
    assert seed_results(tmp_path, "cnn") == [good]  # a report or a resume never reads the torn one as a result
    assert [p for p, _ in torn_seed_results(tmp_path, "cnn")] == [torn]
    first = set_aside(torn, why)
    write(torn, content)
    second = set_aside(torn, why)
    assert (first.name, second.name) == ("result.json.torn-1", "result.json.torn-2") and not torn.exists()
    assert first.read_bytes() == second.read_bytes() == (content.encode() if isinstance(content, str) else content)
    assert f"{torn}: torn record ({why}), moved aside to {first}; redoing it" in capsys.readouterr().out


def test_a_torn_trials_json_is_moved_aside_on_resume_and_left_in_place_by_a_report(tmp_path, capsys):
    write(tmp_path / "sweep.json", json.dumps({"models": ["cnn"], "name": "s"}))
    trials = write(tmp_path / "trials.json", '[{"model": "cnn", "trial_id": "a", "status": "ok"}, {"mod')
    assert Sweep.load(tmp_path, "jobs.report").trials == []
    assert "torn record (not whole JSON" in capsys.readouterr().out and trials.is_file()  # a report moves nothing
    assert Sweep.load(tmp_path, "--resume").trials == []  # rebuilt from Tune's results by the resumed search
    assert not trials.exists() and (tmp_path / "trials.json.torn-1").is_file()
    write(trials, '{"not": "a list"}')
    assert Sweep.load(tmp_path, "--resume").trials == [] and (tmp_path / "trials.json.torn-2").is_file()
