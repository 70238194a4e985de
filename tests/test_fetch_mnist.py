"""The cluster's MNIST step: keep valid files in any form the jobs read, download only when they do not read, and
repair a broken folder (issue 18, fault 4) without deleting anything."""

from __future__ import annotations

import gzip
import os
import shutil
import time
from pathlib import Path

import pytest

from jobs import fetch_mnist
from jobs.engine.data import mnist as data
from jobs.engine.data.mnist import FILES, load_mnist
from jobs.engine.errors import UsageError
from tests.cli import assert_usage_error, run_in_process
from tests.idx_files import idx_contents, mnist_arrays, write_csv, write_mnist
from tests.k8s_helpers import containers, env_values, pod_templates, the_rayjob


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Stands in for torchvision's download: records where it was asked to fetch, writes files as it would.

    torchvision leaves the .gz it fetched beside the raw file it extracted; the raw one is read.
    """
    calls: list[Path] = []

    def fake_download(root: Path) -> Path:
        calls.append(root)
        assert not any(root.iterdir()), "a download starts in an empty folder: torchvision skips files it finds"
        write_mnist(root / "MNIST" / "raw", gz=False)
        write_mnist(root / "MNIST" / "raw", gz=True)
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
    assert_staged_in(downloads, volume)
    assert load_mnist(str(volume)).sizes() == {"train": 110, "val": 10, "test": 40}
    assert "downloaded and checked" in proc.stdout
    assert sorted(p.name for p in volume.iterdir()) == ["MNIST"]  # the temporary download is gone


def assert_staged_in(downloads: list[Path], folder: Path) -> None:
    """One download, into a hidden temporary folder inside `folder` (one file system: the renames are atomic)."""
    ((staging,),) = (downloads,)
    assert staging.parent == folder and staging.name.startswith(".fetch-mnist-")
    assert not staging.exists()


def test_a_partial_folder_is_completed(tmp_path, downloads, capsys):
    folder = write_mnist(tmp_path / "data")
    (folder / (FILES["test_labels"] + ".gz")).unlink()
    proc = run_in_process(fetch_mnist.main, ["--data-dir", str(folder)], capsys)
    assert proc.returncode == 0, proc.stderr
    assert_staged_in(downloads, folder)
    assert "t10k-labels-idx1-ubyte: missing" in proc.stdout
    assert "moved aside" not in proc.stdout  # the three files there are the same as the download's
    assert sorted(p.name for p in folder.iterdir()) == ["MNIST", *(FILES[k] + ".gz" for k in
                                                                   ("test_images", "train_images", "train_labels"))]


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


@pytest.mark.process
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


def snapshot(folder: Path) -> dict[Path, bytes | None]:
    """Every path below `folder` with its content (None for a folder)."""
    return {p: p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


def truncate(path: Path, keep: int = 100) -> None:
    data = path.read_bytes()
    path.write_bytes(gzip.compress(gzip.decompress(data)[:keep]) if path.name.endswith(".gz") else data[:keep])


def test_a_truncated_flat_file_is_moved_aside_and_replaced(tmp_path, downloads, capsys):
    """Fault 4: the broken flat file no longer wins over the download; it is kept under a name that says so."""
    folder = write_mnist(tmp_path / "data")
    broken = folder / (FILES["train_images"] + ".gz")
    truncate(broken)
    proc = run_in_process(fetch_mnist.main, ["--data-dir", str(folder)], capsys)
    assert proc.returncode == 0, proc.stderr
    assert_staged_in(downloads, folder)
    (aside,) = folder.glob(broken.name + ".broken-*")
    assert f"{broken}: moved aside as {aside.name}" in proc.stdout
    assert len(aside.read_bytes()) < 200 and not broken.exists()
    assert (folder / "MNIST" / "raw" / FILES["train_images"]).read_bytes() == idx_contents(mnist_arrays())[
        "train_images"]
    assert load_mnist(str(folder)).sizes() == {"train": 110, "val": 10, "test": 40}
    # The next start (the init container on every restart) finds valid files and downloads nothing.
    again = run_in_process(fetch_mnist.main, ["--data-dir", str(folder)], capsys)
    assert again.returncode == 0 and "nothing downloaded" in again.stdout and len(downloads) == 1


@pytest.mark.parametrize("where", ["MNIST/raw", "kaggle"])
def test_a_truncated_file_where_torchvision_looks_or_in_kaggles_layout_is_replaced(tmp_path, downloads, capsys,
                                                                                 where):
    """torchvision's own download skips MNIST/raw/<file> when it exists, truncated or not; ours starts empty."""
    folder = tmp_path / "data"
    if where == "kaggle":
        for key, content in idx_contents(mnist_arrays()).items():
            (folder / FILES[key]).mkdir(parents=True)
            (folder / FILES[key] / FILES[key]).write_bytes(content)
        broken = folder / FILES["test_labels"] / FILES["test_labels"]
    else:
        write_mnist(folder / "MNIST" / "raw", gz=False)
        broken = folder / "MNIST" / "raw" / FILES["test_labels"]
    truncate(broken, keep=20)
    proc = run_in_process(fetch_mnist.main, ["--data-dir", str(folder)], capsys)
    assert proc.returncode == 0, proc.stderr
    (aside,) = broken.parent.glob(broken.name + ".broken-*")
    assert f"{broken}: moved aside as {aside.name}" in proc.stdout and aside.stat().st_size == 20
    assert load_mnist(str(folder)).sizes()["test"] == 40


def test_a_failed_download_changes_nothing(tmp_path, capsys, monkeypatch):
    """Offline: the broken file stays where it was (the error names why), nothing is moved, no temporary folder."""
    def offline(root: Path) -> Path:
        (root / "MNIST" / "raw").mkdir(parents=True)
        (root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b partial")
        raise UsageError(f"{root}: MNIST download failed (Connection refused)")

    monkeypatch.setattr(fetch_mnist, "download", offline)
    folder = write_mnist(tmp_path / "data")
    truncate(folder / (FILES["train_labels"] + ".gz"))
    before = snapshot(folder)
    proc = run_in_process(fetch_mnist.main, ["--data-dir", str(folder)], capsys)
    assert_usage_error(proc, "MNIST download failed", "copy the four IDX files there")
    assert snapshot(folder) == before


def test_a_download_that_fails_its_checks_changes_nothing(tmp_path, capsys, monkeypatch):
    def bad_mirror(root: Path) -> Path:
        write_mnist(root / "MNIST" / "raw", gz=False)
        truncate(root / "MNIST" / "raw" / FILES["test_images"], keep=1000)
        return root

    monkeypatch.setattr(fetch_mnist, "download", bad_mirror)
    folder = write_mnist(tmp_path / "data")
    truncate(folder / (FILES["test_images"] + ".gz"))
    before = snapshot(folder)
    proc = run_in_process(fetch_mnist.main, ["--data-dir", str(folder)], capsys)
    assert_usage_error(proc, "the MNIST downloaded fails its checks", FILES["test_images"], "truncated or corrupt")
    assert snapshot(folder) == before


def test_a_broken_csv_gets_idx_files_read_before_it_and_stays(tmp_path, downloads, capsys):
    """Only IDX copies are moved aside: the downloaded IDX files are read first, a CSV stays as the user left it."""
    folder = tmp_path / "data"
    splits = mnist_arrays()
    write_csv(folder / "mnist_train.csv", splits["train"])
    truncate(write_csv(folder / "mnist_test.csv", splits["test"]), keep=5000)
    proc = run_in_process(fetch_mnist.main, ["--data-dir", str(folder)], capsys)
    assert proc.returncode == 0, proc.stderr
    assert "mnist_test.csv: line 3 has" in proc.stdout and "moved aside" not in proc.stdout
    assert (folder / "mnist_test.csv").stat().st_size == 5000
    assert load_mnist(str(folder)).sizes()["test"] == 40


def test_a_stale_temporary_download_is_cleared_a_recent_one_kept(tmp_path, downloads, capsys):
    """A killed fetch leaves its hidden folder (never read); a later fetch removes it once it is an hour old."""
    folder = tmp_path / "data"
    stale, recent = folder / ".fetch-mnist-old", folder / ".fetch-mnist-now"
    for staging in (stale, recent):
        write_mnist(staging / "MNIST" / "raw", gz=False)
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    proc = run_in_process(fetch_mnist.main, ["--data-dir", str(folder)], capsys)
    assert proc.returncode == 0, proc.stderr
    assert not stale.exists() and recent.exists()


def test_the_default_download_folder_is_repaired_too(tmp_path, capsys, monkeypatch):
    """Without --data-dir the jobs read ./data, fetched by torchvision, which would skip the truncated file there."""
    def fake_download(root: Path) -> Path:
        write_mnist(root / "MNIST" / "raw", gz=False)
        return root

    monkeypatch.setattr(data, "download", fake_download)
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    root = write_mnist(tmp_path / "data" / "MNIST" / "raw", gz=False).parent.parent
    broken = root / "MNIST" / "raw" / FILES["train_labels"]
    truncate(broken, keep=10)
    assert load_mnist(None, download_root=str(root)).sizes()["train"] == 110
    (aside,) = broken.parent.glob(broken.name + ".broken-*")
    assert f"{broken}: moved aside as {aside.name}" in capsys.readouterr().err
