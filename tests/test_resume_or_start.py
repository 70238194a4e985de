"""`--resume-or-start --name NAME` (the RayJob's entrypoint, run again by KubeRay after a lost head): what it refuses,
in one `error:` line before Ray starts, and which way it goes. The run twice into the same folder is
tests/test_sweep_submit.py's."""

import pytest

from jobs.sweep import main
from tests.cli import assert_usage_error
from tests.test_sweep_cli_errors import no_ray, sweep_error  # noqa: F401 - no_ray: the fixture, used below
from tune.sweep.record import Sweep

pytestmark = pytest.mark.usefixtures("no_ray")  # every case ends before Ray starts


def recorded(output, name="job"):
    folder = output / name
    folder.mkdir(parents=True)
    Sweep(folder, ["cnn"], name, "", "smoke", "random", 1, 1, []).save()
    return folder


@pytest.mark.parametrize(("args", "fragments"), [
    (["--resume-or-start"], ["--resume-or-start needs --name NAME"]),
    (["--resume-or-start", "--name", "job", "--resume"], ["--resume-or-start and --resume: give one"]),
    (["--resume-or-start", "--name", "a/b"], ["--name 'a/b'"]),
])
def test_what_it_refuses(args, fragments, tmp_path, capsys, mnist_dir):
    assert_usage_error(sweep_error(capsys, mnist_dir, *args, "--output", str(tmp_path)), *fragments)
    assert list(tmp_path.iterdir()) == []


def test_a_recorded_sweep_is_continued_only_with_the_flags_it_was_recorded_with(tmp_path, capsys, mnist_dir):
    """A RayJob whose entrypoint was edited to another preset, then retried: the recorded sweep is not
    continued as something else, and nothing in it changes."""
    folder = recorded(tmp_path)
    before = (folder / "sweep.json").read_bytes()
    proc = sweep_error(capsys, mnist_dir, "--preset", "quick", "--models", "cnn", "--output", str(tmp_path),
                     "--resume-or-start", "--name", "job")
    assert_usage_error(proc, "--resume-or-start:", "was recorded with --preset smoke", "--preset quick contradicts it",
                       "without --resume-or-start")
    assert (folder / "sweep.json").read_bytes() == before


def test_an_empty_folder_left_by_a_killed_start_is_started_again_and_a_filled_one_is_not_taken(
        tmp_path, capsys, mnist_dir):
    """A run killed between claiming OUTPUT/NAME and writing sweep.json leaves an empty folder: the retry starts
    the sweep there (it gets as far as starting Ray, which the no_ray fixture refuses). A folder with files but no
    sweep.json is not claimed, and its files stay."""
    (tmp_path / "job").mkdir()
    with pytest.raises(AssertionError, match="Ray was started"):
        main(["--models", "cnn", "--preset", "smoke", "--output", str(tmp_path), "--resume-or-start", "--name", "job",
              "--data-dir", str(mnist_dir)])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("kept")
    proc = sweep_error(capsys, mnist_dir, "--models", "cnn", "--output", str(tmp_path), "--resume-or-start",
                     "--name", "other")
    assert_usage_error(proc, "--resume-or-start:", "holds no sweep.json", "move it aside or choose another --name")
    assert (tmp_path / "other" / "notes.txt").read_text() == "kept"
