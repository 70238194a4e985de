"""The CNN through the one loop without Ray (tests/local_session.py): it learns, its result.json holds what the issue
lists, a run that failed resumes from its last epoch's checkpoint, and a divergence is one error. The same loop
under Ray Train, in a Ray task and in a sweep is tests/test_data_parallel.py's, test_task_run.py's and
test_reference_sweep.py's."""

import math
from pathlib import Path

import pytest

from jobs.engine.errors import Diverged
from tests.local_session import LocalSession, train_locally

REQUIRED = ("model", "config", "test_accuracy", "test_f1_macro", "test_f1_weighted", "test_loss", "train_time_s",
            "epochs", "params", "images_per_s", "peak_memory_mb", "history", "confusion_matrix", "env")


def test_cnn_smoke_run_learns_and_writes_result(mnist, tmp_path):
    result = train_locally("cnn", mnist, tmp_path, ["epochs=2"])
    assert set(REQUIRED) <= set(result)
    assert result["epochs"] == 2 and len(result["history"]) == 2
    # Chance is 10% accuracy and a loss of ln(10); two small epochs must be far better than that.
    assert result["history"][-1]["train_loss"] < 0.8 * math.log(10)
    assert result["test_accuracy"] > 0.5
    assert sum(map(sum, result["confusion_matrix"])) == 1000  # the smoke preset's test subset
    assert result["params"] > 100_000 and result["images_per_s"] > 0 and result["peak_memory_mb"] > 0
    assert (tmp_path / "result.json").is_file()
    # Each epoch covers the smoke preset's 1,024 training images once.
    assert result["images_per_s"] * result["train_time_s"] == pytest.approx(2 * 1024)


def test_a_failed_run_resumes_from_its_last_epoch_checkpoint(mnist, tmp_path):
    # The run raises at the start of epoch 2; run again in the same folder it must load epoch 1's checkpoint and
    # train only epoch 2, not start over (what FailureConfig and a retrain's rerun rely on).
    overrides = ["epochs=2", "fail_at_epoch=1"]
    first = LocalSession(tmp_path)
    with pytest.raises(RuntimeError, match="injected failure at epoch 1"):
        train_locally("cnn", mnist, tmp_path, overrides, session=first)
    assert [r["epoch"] for r in first.reports] == [1]
    again = LocalSession(tmp_path)
    result = train_locally("cnn", mnist, tmp_path, overrides, session=again)
    assert [r["epoch"] for r in again.reports] == [2, 2]  # epoch 2, then the finished run's report
    # Epoch 1's entry came back from the checkpoint: the very numbers the first attempt reported; epoch 2's carries
    # the test numbers, as the finished run reported it.
    assert result["history"] == [first.reports[0], again.reports[-1]]
    assert {k: v for k, v in again.reports[-1].items() if not k.startswith("test_")} == again.reports[0]
    assert result["epochs"] == 2 and result["test_accuracy"] > 0.3


def test_a_divergence_is_one_error_naming_the_epoch_and_what_to_try(mnist, tmp_path):
    # SGD at lr 10 with momentum 0.99 turns the loss to NaN in epoch 1 (seen every time).
    session = LocalSession(tmp_path)
    with pytest.raises(Diverged, match=r"training diverged: the loss is nan at epoch 1 of 1 .*--set lr=1\).*grad_clip"):
        train_locally("cnn", mnist, tmp_path, ["lr=10", "optimizer=sgd", "momentum=0.99", "precision=fp32"],
                      session=session)
    assert session.reports == []  # nothing reported, no checkpoint of a diverged model


class FolderRecordingSession(LocalSession):
    """A LocalSession that also keeps the files of each reported folder."""

    def __init__(self, folder) -> None:
        super().__init__(folder)
        self.folders: list[list[str]] = []

    def report(self, metrics, folder=None) -> None:
        self.folders.append(sorted(p.name for p in Path(folder).iterdir()) if folder else [])
        super().report(metrics, folder)


def test_each_epoch_reports_its_checkpoint_and_the_finished_run_its_measurements_once_after_the_loop(mnist, tmp_path):
    # torchvision's order: every epoch saves its checkpoint alone; after the loop, one report with the summary and
    # the final measurements' files beside the finished run's weights. A rerun restored from it does nothing.
    session = FolderRecordingSession(tmp_path)
    result = train_locally("cnn", mnist, tmp_path, ["epochs=2", "val_checks_per_epoch=2"], session=session)
    assert [r["epoch"] for r in session.reports] == [0.5, 1, 1.5, 2, 2]
    assert session.folders == [[], ["checkpoint.pt"], [], ["checkpoint.pt"],
                               ["checkpoint.pt", "predictions.npz", "summary.json"]]
    again = FolderRecordingSession(tmp_path)
    rerun = train_locally("cnn", mnist, tmp_path, ["epochs=2", "val_checks_per_epoch=2"], session=again)
    assert again.reports == [] and rerun["test_accuracy"] == result["test_accuracy"]
    assert rerun["history"] == result["history"] and rerun["latency_ms_p50"] == result["latency_ms_p50"]
