"""Bad input to `python -m jobs.sweep`: one `error:` line, exit 2, before any search starts."""

import pytest

from jobs.sweep import main
from tests.cli import assert_usage_error, run_in_process


@pytest.mark.parametrize(("args", "fragments"), [
    (["--models", "cnn,lenet"], ["--models: unknown model lenet"]),
    (["--preset", "huge"], ["unknown preset 'huge'"]),
    (["--search", "bayes"], ["--search 'bayes'"]),
    (["--samples", "0"], ["--samples must be >= 1"]),
    (["--models", "cnn", "--set", "patch_size=7"], ["--set patch_size: no selected model"]),
    (["--models", "cnn", "--set", "lr=quick"], ["--set lr=quick: expected float"]),
])
def test_bad_flags(args, fragments, capsys, mnist_dir):
    assert_usage_error(run_in_process(main, [*args, "--data-dir", str(mnist_dir)], capsys), *fragments)


def test_resume_without_an_earlier_sweep(tmp_path, capsys, mnist_dir):
    proc = run_in_process(main, ["--resume", "--output", str(tmp_path), "--data-dir", str(mnist_dir)], capsys)
    assert_usage_error(proc, "--resume: no earlier sweep in", "sweep.json not found")


def test_unreachable_address(tmp_path, capsys, mnist_dir):
    from tests.ray_head import free_port

    proc = run_in_process(main, ["--models", "cnn", "--preset", "smoke", "--output", str(tmp_path),
                                 "--address", f"127.0.0.1:{free_port()}", "--data-dir", str(mnist_dir)], capsys)
    assert_usage_error(proc, "Ray cluster not reachable")


def test_bad_space_file(tmp_path, capsys, mnist_dir):
    space = tmp_path / "space.json"
    space.write_text('{"cnn": {"lr": {"gaussian": [0, 1]}}}')
    proc = run_in_process(main, ["--models", "cnn", "--space", str(space), "--output", str(tmp_path),
                                 "--data-dir", str(mnist_dir)], capsys)
    assert_usage_error(proc, "--space", "lr: expected one of choice")
