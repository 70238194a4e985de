"""The cluster's MNIST step: keep valid files in any layout the jobs read, download only when they are missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jobs import fetch_mnist
from jobs.engine.data import FILES, load_mnist
from tests.cli import assert_usage_error, run_in_process
from tests.idx_files import write_mnist
from tests.k8s_helpers import containers, env_values, pod_templates, the_rayjob


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Stands in for torchvision's download: records where it was asked to fetch, writes files as it would."""
    calls: list[Path] = []

    def fake_download(root: Path) -> Path:
        calls.append(root)
        write_mnist(root / "MNIST" / "raw", gz=False)
        return root

    monkeypatch.setattr(fetch_mnist, "download", fake_download)
    return calls


def test_seeded_flat_gz_files_are_kept_without_a_download(mnist_dir, tmp_path, downloads, capsys):
    """What an offline cluster's volume holds after `kubectl cp` of the four .gz files: torchvision would refetch."""
    seeded = tmp_path / "data"
    shutil.copytree(mnist_dir, seeded)
    before = {p.name: p.stat().st_mtime_ns for p in seeded.iterdir()}
    proc = run_in_process(fetch_mnist.main, ["--data-dir", str(seeded)], capsys)
    assert proc.returncode == 0, proc.stderr
    assert downloads == []
    assert {p.name: p.stat().st_mtime_ns for p in seeded.iterdir()} == before
    assert "'train': 55000, 'val': 5000, 'test': 10000" in proc.stdout


def test_an_empty_volume_is_filled_and_checked(tmp_path, downloads, capsys, monkeypatch):
    volume = tmp_path / "results" / "data"
    monkeypatch.setenv("MNIST_DATA_DIR", str(volume))
    proc = run_in_process(fetch_mnist.main, [], capsys)
    assert proc.returncode == 0, proc.stderr
    assert downloads == [volume]
    assert load_mnist(str(volume)).sizes() == {"train": 110, "val": 10, "test": 40}
    assert "downloaded and checked" in proc.stdout


def test_a_partial_folder_is_completed(tmp_path, downloads, capsys):
    folder = write_mnist(tmp_path / "data")
    (folder / (FILES["test_labels"] + ".gz")).unlink()
    proc = run_in_process(fetch_mnist.main, ["--data-dir", str(folder)], capsys)
    assert proc.returncode == 0, proc.stderr
    assert downloads == [folder]
    assert "t10k-labels-idx1-ubyte: missing" in proc.stdout


def test_a_failed_download_is_one_error_line(tmp_path, capsys, monkeypatch):
    """torchvision's real download path, offline: its message names every mirror on a line of its own."""
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://a/, got:\n"
                           "<urlopen error [Errno 111] Connection refused>\n")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    proc = run_in_process(fetch_mnist.main, ["--data-dir", str(tmp_path / "empty")], capsys)
    assert_usage_error(proc, "MNIST download failed", "Connection refused", "copy the four IDX files there")


def test_no_folder_named_is_an_error(capsys, monkeypatch, downloads):
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    assert_usage_error(run_in_process(fetch_mnist.main, [], capsys), "--data-dir or MNIST_DATA_DIR")
    assert downloads == []


def test_the_head_fetches_into_the_folder_the_jobs_read() -> None:
    """The init container runs this module, and fills the folder every Ray container then reads."""
    job = the_rayjob("base")
    inits = [(label, container) for label, template in pod_templates(job)
             for container, is_init in containers(template) if is_init]
    ((label, fetch),) = inits
    assert label == "head" and fetch["command"] == ["python", "-m", "jobs.fetch_mnist"]
    fetched_into = env_values(fetch)["MNIST_DATA_DIR"]
    for label, template in pod_templates(job):
        if label != "submitter":
            assert env_values(template["spec"]["containers"][0])["MNIST_DATA_DIR"] == fetched_into, label
