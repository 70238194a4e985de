"""One folder per sweep, `latest` beside them, proxies kept away from Ray's own traffic, the cluster-busy figure."""

import os
from types import SimpleNamespace

import pytest

from jobs.engine.errors import UsageError
from jobs.engine.run.loopback import bypass_proxies, head_host
from tune.sweep.folder import check_writable, claim, find_sweep, point_latest
from tune.sweep.resource_usage import cluster_busy, held_seconds


def test_sweeps_started_in_the_same_second_get_folders_of_their_own(tmp_path):
    first, second = claim(tmp_path, None, "smoke"), claim(tmp_path, None, "smoke")
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.startswith("sweep-smoke-") and second.name.startswith(first.name)
    with pytest.raises(UsageError, match="already holds a sweep"):
        claim(tmp_path, first.name, "smoke")


def test_latest_points_to_the_newest_and_finds_its_sweep(tmp_path):
    old, new = claim(tmp_path, "a", "smoke"), claim(tmp_path, "b", "smoke")
    for folder in (old, new):
        (folder / "sweep.json").write_text("{}")
        point_latest(tmp_path, folder)
    assert os.readlink(tmp_path / "latest") == "b"  # relative: the folder can move, or be mounted elsewhere
    assert find_sweep(tmp_path, "x") == new and find_sweep(old, "x") == old
    with pytest.raises(UsageError, match="does not exist"):
        find_sweep(tmp_path / "missing", "x")
    with pytest.raises(UsageError, match="no sweep in"):
        find_sweep(claim(tmp_path, "empty", "smoke"), "x")


def test_an_unwritable_folder_is_a_usage_error(tmp_path):
    assert check_writable(tmp_path / "new" / "deep", "--output").is_dir()
    with pytest.raises(UsageError, match="--output /proc/forbidden: cannot create or write"):
        check_writable("/proc/forbidden", "--output")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o500)
    if os.access(read_only, os.W_OK):  # root writes anywhere: the /proc case above stands for it
        return
    with pytest.raises(UsageError, match="cannot create or write"):
        check_writable(read_only, "--storage")


@pytest.mark.parametrize(("address", "host"), [
    ("10.1.2.3:6379", "10.1.2.3"), ("ray://head.svc:10001", "head.svc"), ("http://head:8265", "head"),
    ("auto", None), (None, None)])
def test_head_host(address, host):
    assert head_host(address) == host


def test_ray_and_loopback_hosts_join_what_the_user_set_in_no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "corp.example,127.0.0.1")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    bypass_proxies("head.ray.svc:6379")
    for var in ("NO_PROXY", "no_proxy"):
        assert os.environ[var].split(",") == ["corp.example", "127.0.0.1", "localhost", "head.ray.svc"]


def test_cluster_busy_is_held_resource_seconds_over_capacity():
    def run(start, end, **resources):
        return SimpleNamespace(started_at=f"2026-01-01T00:00:{start:02d}+00:00",
                               finished_at=f"2026-01-01T00:00:{end:02d}+00:00", resources=resources)

    runs = [run(0, 10, CPU=1.0), run(5, 15, CPU=1.0), run(0, 20, CPU=1.0, GPU=0.5),
            SimpleNamespace(started_at=None, finished_at=None, resources={"CPU": 1})]
    assert held_seconds(runs[0], "CPU") == 10 and held_seconds(runs[3], "CPU") == 0
    assert cluster_busy(runs, 20.0, {"CPU": 4.0}) == pytest.approx(40 / 80)
    assert cluster_busy(runs, 20.0, {"CPU": 4.0, "GPU": 1.0}) == pytest.approx(10 / 20)  # GPUs when it has them
    assert cluster_busy(runs, 0.0, {"CPU": 4.0}) is None
