"""Bad input to `python -m jobs.train`: one `error:` line on stderr, exit code 2, before any Ray work."""

import pytest

from jobs.engine.data.mnist import FILES
from jobs.train import main
from tests.cli import assert_usage_error, run_in_process, run_module
from tests.idx_files import write_mnist


@pytest.mark.parametrize(("args", "fragments"), [
    (["--model", "lenet"], ["unknown model 'lenet'", "cnn"]),
    (["--model", "cnn", "--preset", "huge"], ["unknown preset 'huge'"]),
    (["--model", "cnn", "--set", "dropout"], ["expected key=value"]),
    (["--model", "cnn", "--set", "=3"], ["expected key=value"]),
    (["--model", "cnn", "--set", "colour=red"], ["--set colour: unknown key"]),
    (["--model", "cnn", "--set", "lr=fast"], ["--set lr=fast: expected float"]),
    (["--model", "cnn", "--set", "epochs=2.5"], ["--set epochs=2.5: expected int"]),
    (["--model", "cnn", "--set", "augment=maybe"], ["expected bool"]),
    (["--model", "cnn", "--set", "channels=16,x"], ["expected comma-separated ints"]),
    (["--model", "cnn", "--set", "pooling=median"], ["pooling='median' is not one of"]),
    (["--model", "cnn", "--set", "dropout=1.5"], ["dropout=1.5: dropout must be >= 0 and < 1"]),
    (["--model", "cnn", "--set", "kernel_size=15", "--set", "padding=valid"], ["shrink 28x28 to nothing"]),
    (["--model", "cnn", "--set", "optimizer=lion"], ["optimizer='lion' is not one of"]),
    (["--model", "cnn", "--set", "lr=0"], ["lr=0.0: lr must be > 0"]),
])
def test_bad_flags_and_configs(args, fragments, mnist_dir, capsys):
    assert_usage_error(run_in_process(main, [*args, "--data-dir", str(mnist_dir)], capsys), *fragments)


@pytest.mark.slow
@pytest.mark.process
def test_command_line_prints_one_line_and_exits_2(mnist_dir):
    # The one run of the real command line: the cases above share its main() and its error handling.
    assert_usage_error(run_module("jobs.train", "--model", "lenet", "--data-dir", str(mnist_dir)),
                       "unknown model 'lenet'")


@pytest.mark.parametrize("how", ["missing", "truncated", "corrupt"])
def test_bad_data_files(tmp_path, how, capsys):
    folder = write_mnist(tmp_path / "m")
    target = folder / (FILES["test_images"] + ".gz")
    if how == "missing":
        target.unlink()
    elif how == "truncated":
        target.write_bytes(target.read_bytes()[:50])
    else:
        target.write_bytes(b"garbage" * 10)
    proc = run_in_process(main, ["--model", "cnn", "--preset", "smoke", "--data-dir", str(folder)], capsys)
    assert_usage_error(proc, str(target.parent / FILES["test_images"]))


def test_missing_data_dir_from_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "absent"))
    proc = run_in_process(main, ["--model", "cnn"], capsys)
    assert_usage_error(proc, "data folder does not exist")


def test_unreachable_address(mnist_dir, capsys):
    from tests.ray_head import free_port

    proc = run_in_process(main, ["--model", "cnn", "--preset", "smoke", "--data-dir", str(mnist_dir),
                                 "--address", f"127.0.0.1:{free_port()}"], capsys)
    assert_usage_error(proc, "Ray cluster not reachable")


@pytest.mark.parametrize("case", ["read-only", "under a file", "a file", "a URI", "name with a separator",
                                  "name that climbs"])
def test_an_output_or_name_that_cannot_hold_the_run(case, tmp_path, mnist_dir, capsys, monkeypatch):
    import jobs.engine.run.cluster

    monkeypatch.setattr(jobs.engine.run.cluster, "connect", lambda *a, **k: pytest.fail("Ray started before the check"))
    monkeypatch.chdir(tmp_path)  # a URI taken for a folder would be created here, as ./s3:/bucket/runs
    (tmp_path / "a-file").write_text("x")
    output, name, fragments = {
        "read-only": ("/proc/archsweep", None, ["--output /proc/archsweep: cannot create or write there"]),
        "under a file": (f"{tmp_path}/a-file/runs", None, [f"--output {tmp_path}/a-file/runs: cannot create"]),
        "a file": (f"{tmp_path}/a-file", None, [f"--output {tmp_path}/a-file: cannot create or write there"]),
        "a URI": ("s3://bucket/runs", None, ["--output s3://bucket/runs: a local folder is needed here, not a URI"]),
        "name with a separator": ("out", "a/b", ["--name 'a/b': use letters"]),
        "name that climbs": ("out", "..", ["--name '..': use letters"]),
    }[case]
    args = ["--model", "cnn", "--preset", "smoke", "--data-dir", str(mnist_dir), "--output", output]
    assert_usage_error(run_in_process(main, [*args, *(["--name", name] if name else [])], capsys), *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", *(["out"] if name else [])]


def test_bad_flag_value_is_one_line(capsys):
    assert_usage_error(run_in_process(main, ["--model", "cnn", "--workers", "two"], capsys), "--workers")


@pytest.mark.slow
def test_a_diverging_run_is_one_error_line_exit_1_without_a_retry(ray_local, train_events, mnist_dir, tmp_path,
                                                                   capsys):
    # SGD at lr 10 with momentum 0.99 turns the smoke cnn's loss to NaN in its first epoch (seen every time). Under
    # Ray Train, FailureConfig would replay the same divergence from scratch: the worker reports it instead of
    # raising, once, and the driver ends the command with one line (the loop's own message: test_cnn_smoke.py).
    proc = run_in_process(main, ["--model", "cnn", "--preset", "smoke", "--data-dir", str(mnist_dir), "--output",
                                 str(tmp_path), "--set", "lr=10", "--set", "optimizer=sgd", "--set", "momentum=0.99",
                                 "--set", "precision=fp32", "--max-failures", "3"], capsys)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert lines[-1].startswith("error: training diverged: the loss is nan at epoch 1 of 1"), lines[-3:]
    assert "--set lr=1" in lines[-1] and "grad_clip" in lines[-1]
    assert "Traceback" not in proc.stderr
    events = train_events()
    assert len(events) == 1 and "exceptions" not in events[0], events  # one report, no failure, no restart
    assert "diverged" in events[0]["reports"][0]
