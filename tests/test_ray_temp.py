"""Runs work with any TMPDIR (issue 25, case 8): a temp dir too long for Ray's socket paths, or one Ray cannot use,
gets a short one of this user's; a TMPDIR that does not exist or cannot be written is one error line before Ray
starts, and a sweep claims no folder. A real Ray under a 54-character TMPDIR: tests/test_other_rays.py."""

import tempfile
from pathlib import Path

import pytest

from jobs.engine.errors import UsageError
from jobs.engine.run.ray_temp import SOCKET_PATH_MAX, embedded_temp_dir, longest_socket_path
from tests.cli import assert_usage_error, run_in_process
from tests.idx_files import write_mnist


def folder_of_length(parent: Path, length: int) -> Path:
    """A folder under PARENT whose path has at least LENGTH characters."""
    folder = parent / ("t" * max(1, length - len(str(parent)) - 1))
    folder.mkdir()
    return folder


@pytest.mark.parametrize("variable", ["TMPDIR", "RAY_TMPDIR"])
def test_a_long_temp_dir_gets_a_short_one(tmp_path, variable):
    long = folder_of_length(tmp_path, 54)
    chosen = embedded_temp_dir({variable: str(long)})
    assert chosen is not None and not chosen.startswith(str(long))
    assert Path(chosen).is_dir() and longest_socket_path(Path(chosen)) <= SOCKET_PATH_MAX


def test_a_short_temp_dir_is_left_to_ray():
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="t") as short:  # a TMPDIR that fits, as most are
        assert embedded_temp_dir({"TMPDIR": short}) is None


def test_a_ray_folder_that_ray_cannot_use_gets_a_short_one():
    # Another user's /tmp/ray, or a file where Ray's folder should be: Ray would fail to make its sessions there.
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="t") as short:  # short enough: only the folder is wrong
        (Path(short) / "ray").write_text("not a folder")
        assert embedded_temp_dir({"RAY_TMPDIR": short}) not in (None, str(Path(short) / "ray"))


@pytest.mark.parametrize(("tmpdir", "fragment"), [
    ("missing", "no such folder"),
    ("/proc/self", "cannot write there"),  # a folder even root cannot write in
])
def test_a_tmpdir_ray_cannot_use_is_one_line(tmp_path, tmpdir, fragment):
    path = str(tmp_path / tmpdir) if tmpdir == "missing" else tmpdir
    with pytest.raises(UsageError, match=f"TMPDIR={path}: {fragment}"):
        embedded_temp_dir({"TMPDIR": path})


@pytest.mark.parametrize("command", ["sweep", "train"])
def test_commands_stop_before_ray_and_claim_nothing(tmp_path, monkeypatch, capsys, command):
    import jobs.sweep
    import jobs.train

    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))
    monkeypatch.delenv("RAY_TMPDIR", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    output = tmp_path / "results"
    main = {"sweep": jobs.sweep.main, "train": jobs.train.main}[command]
    flags = ["--models", "cnn"] if command == "sweep" else ["--model", "cnn"]
    data = str(write_mnist(tmp_path / "m"))
    proc = run_in_process(main, [*flags, "--preset", "smoke", "--data-dir", data, "--output", str(output)], capsys)
    assert_usage_error(proc, f"TMPDIR={tmp_path / 'missing'}: no such folder")
    assert not output.exists() or list(output.iterdir()) == []  # no sweep folder, no `latest`
