"""A tracker that does not answer (--mlflow, or MLFLOW_TRACKING_URI) is bad input: one `error:` line, exit 2, before
Ray starts, a sweep folder is claimed or a report is written; as is --register without a tracker."""

from __future__ import annotations

import pytest

import jobs.report
import jobs.sweep
import jobs.train
from tests.cli import assert_usage_error, run_in_process
from tests.mlflow_server import keep_no_proxy
from tests.ray_head import free_port
from tests.sweep_fixture import write_sweep


@pytest.fixture
def no_ray(monkeypatch):
    """Fails the test if the command gets as far as joining or starting Ray."""
    import jobs.engine.run.cluster

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started before the unreachable tracker was caught")

    monkeypatch.setattr(jobs.engine.run.cluster, "connect", refuse)


@pytest.fixture
def nobody(monkeypatch) -> str:
    keep_no_proxy(monkeypatch)
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there: refused at once


def test_a_sweep_with_an_unreachable_tracker_stops_before_ray(capsys, mnist_dir, no_ray, nobody, tmp_path):
    done = run_in_process(jobs.sweep.main, ["--models", "cnn", "--preset", "smoke", "--mlflow", nobody,
                                            "--data-dir", str(mnist_dir), "--output", str(tmp_path)], capsys)
    assert_usage_error(done, f"--mlflow {nobody}: no MLflow tracking server answers there")
    assert list(tmp_path.iterdir()) == []  # no sweep folder claimed, no `latest`


def test_the_tracker_from_the_environment_is_checked_as_the_flag(capsys, mnist_dir, no_ray, nobody, tmp_path,
                                                                monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", nobody)
    done = run_in_process(jobs.train.main, ["--model", "cnn", "--preset", "smoke", "--data-dir", str(mnist_dir),
                                            "--output", str(tmp_path)], capsys)
    assert_usage_error(done, nobody, "no MLflow tracking server answers there")
    assert list(tmp_path.iterdir()) == []


def test_a_report_with_an_unreachable_tracker_writes_nothing(capsys, nobody, tmp_path):
    folder = write_sweep(tmp_path / "sweep", seeds=1, samples=2)
    before = sorted(p.name for p in folder.iterdir())
    assert_usage_error(run_in_process(jobs.report.main, [str(folder), "--mlflow", nobody], capsys), nobody)
    assert sorted(p.name for p in folder.iterdir()) == before  # no report.html, no comparison files


def test_register_needs_a_tracker(capsys, mnist_dir, no_ray, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    done = run_in_process(jobs.sweep.main, ["--models", "cnn", "--register", "best", "--data-dir", str(mnist_dir),
                                            "--output", str(tmp_path)], capsys)
    assert_usage_error(done, "--register NAME needs a tracker")
