"""Bad input to `python -m jobs.sweep`: one `error:` line, exit 2, before Ray starts or any folder is claimed."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import import_module

import pytest

from jobs.sweep import main
from tests.cli import assert_usage_error, run_in_process
from tune.sweep.record import Sweep


@pytest.fixture
def no_ray(monkeypatch):
    """Fails the test if the sweep gets as far as joining or starting Ray."""
    import jobs.engine.run.cluster

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started before the bad input was caught")

    monkeypatch.setattr(jobs.engine.run.cluster, "connect", refuse)


def sweep_error(capsys, mnist_dir, *args):
    return run_in_process(main, [*args, "--data-dir", str(mnist_dir)], capsys)


@pytest.mark.parametrize(("args", "fragments"), [
    (["--models", "cnn,lenet"], ["--models: unknown model lenet"]),
    (["--preset", "huge"], ["unknown preset 'huge'"]),
    (["--search", "bayes"], ["--search 'bayes'"]),
    (["--samples", "0"], ["--samples must be >= 1"]),
    (["--models", "cnn", "--set", "patch_size=7"], ["--set patch_size: no selected model"]),
    (["--models", "cnn", "--set", "lr=quick"], ["--set lr=quick: expected float"]),
    (["--models", "cnn", "--name", "a/b"], ["--name 'a/b'"]),
    (["--objective", "accuracy,latency"], ["serving latency is measured on the final retrains alone"]),
    (["--objective", "gflops"], ["give accuracy, or accuracy and one cost"]),
    (["--objective", "accuracy,gflops", "--search", "grid"], ["need Optuna's multi-objective sampling"]),
    (["--objective", "accuracy,gflops", "--budget", "params=3"], ["--budget 'params=3': give gflops=VALUE"]),
    (["--budget", "gflops=0.1"], ["--budget 'gflops=0.1'"]),
])
def test_bad_flags(args, fragments, capsys, mnist_dir, no_ray, tmp_path):
    assert_usage_error(sweep_error(capsys, mnist_dir, *args, "--output", str(tmp_path)), *fragments)
    assert list(tmp_path.iterdir()) == []  # no sweep folder claimed, no `latest`


SPACES = {
    "unknown key": ({"cnn": {"no_such_key": {"choice": [1, 2]}}}, ["cnn: no_such_key: not a key of cnn"]),
    "invalid choice": ({"cnn": {"dropout": {"choice": [0.2, 1.5]}}}, ["dropout=1.5", "dropout"]),
    "range end": ({"cnn": {"dropout": {"uniform": [0.1, 1.0]}}}, ["dropout=1.0"]),
    "randint end": ({"vit": {"depth": {"randint": [0, 4]}}}, ["depth=0"]),
    "bad kind": ({"cnn": {"lr": {"gaussian": [0, 1]}}}, ["lr: expected one of choice"]),
    "bad range": ({"cnn": {"lr": {"loguniform": [0.01, 0.001]}}}, ["lr: loguniform needs [low, high]"]),
    # Each value alone suits the defaults (4 heads, width 128); 8 heads do not divide a width of 132.
    "combination": ({"vit": {"heads": {"choice": [4, 8]}, "dim": {"choice": [128, 132]}}}, ["heads=8, dim=132"]),
    "model not selected": ({"vit": {"lr": {"choice": [0.001]}}}, ["'vit' is not among --models"]),
}


@pytest.mark.parametrize("case", list(SPACES))
def test_bad_space_file(case, tmp_path, capsys, mnist_dir, no_ray):
    space, fragments = SPACES[case]
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    chosen = "vit" if case in ("randint end", "combination") else "cnn"
    proc = sweep_error(capsys, mnist_dir, "--models", chosen, "--space", str(path), "--output", str(tmp_path / "out"))
    assert_usage_error(proc, f"--space {path}", *fragments)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_valid_space_file_passes_the_checks(tmp_path):
    from tune.sweep.checks import configs_for, read_space_file

    path = tmp_path / "space.json"
    space = {"vit": {"heads": {"choice": [2, 4]}, "dim": {"choice": [64, 96]}, "depth": {"randint": [2, 5]}}}
    path.write_text(json.dumps(space))
    assert read_space_file(str(path), {"vit": configs_for("vit", "smoke", [])}) == space


@pytest.mark.parametrize("flag", ["--output", "--storage"])
def test_an_unwritable_folder(flag, tmp_path, capsys, mnist_dir, no_ray):
    args = ["--models", "cnn", "--preset", "smoke", "--output", str(tmp_path), flag, "/proc/forbidden"]
    assert_usage_error(sweep_error(capsys, mnist_dir, *args), f"{flag} /proc/forbidden: cannot create or write")


@pytest.mark.parametrize(("flag", "value", "fragment"), [
    ("--output", "s3://bucket/sweeps", "a local folder is needed here, not a URI"),
    ("--storage", "s3://bucket/x?endpoint_override=127.0.0.1:9000", "set them in the environment"),
])
def test_a_uri_where_it_cannot_work(flag, value, fragment, tmp_path, capsys, mnist_dir, no_ray, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a URI taken for a folder would be created here, as ./s3:/bucket/sweeps
    args = ["--models", "cnn", "--preset", "smoke", "--output", str(tmp_path / "out"), flag, value]
    assert_usage_error(sweep_error(capsys, mnist_dir, *args), f"{flag} {value}: ", fragment)
    assert not (tmp_path / "s3:").exists()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []  # no sweep folder claimed


@pytest.mark.process  # the check of a storage URI runs in a child process
def test_a_storage_uri_is_checked_before_ray_starts_and_again_on_resume(tmp_path, capsys, mnist_dir, no_ray,
                                                                        monkeypatch):
    args = ["--models", "cnn", "--preset", "smoke", "--output", str(tmp_path), "--storage", "foo://bucket/x"]
    assert_usage_error(sweep_error(capsys, mnist_dir, *args), "--storage foo://bucket/x: ", "no filesystem for 'foo://'")
    assert list(tmp_path.iterdir()) == []
    # A sweep recorded with an S3 storage, resumed where its endpoint cannot be reached (AWS_ENDPOINT_URL).
    from tests.ray_head import free_port

    folder = recorded_sweep(tmp_path / "out", storage="s3://sweeps/archsweep")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    proc = sweep_error(capsys, mnist_dir, "--resume", str(folder))
    assert_usage_error(proc, "--storage s3://sweeps/archsweep: cannot reach http://127.0.0.1:")


def recorded_sweep(output, name="sweep-a", storage=None):
    folder = output / name
    folder.mkdir(parents=True)
    Sweep(folder, ["cnn"], name, storage or str(folder / "tune"), "smoke", "random", 1, 1, ["lr=0.001"]).save()
    (output / "latest").symlink_to(name)
    return folder


def test_resume_without_an_earlier_sweep(tmp_path, capsys, mnist_dir, no_ray):
    proc = sweep_error(capsys, mnist_dir, "--resume", "--output", str(tmp_path))
    assert_usage_error(proc, "--resume: no sweep in", "sweep.json not found")


@pytest.mark.parametrize(("args", "fragments"), [
    (["--preset", "quick"], ["--preset quick contradicts it", "--preset smoke --models cnn --search random"]),
    (["--models", "cnn,vit"], ["--models cnn,vit contradicts it"]),
    (["--search", "optuna", "--samples", "4"], ["--search optuna, --samples 4 contradicts it"]),
    (["--set", "lr=0.01"], ["--set lr=0.01 contradicts it", "--set lr=0.001"]),
])
def test_resume_with_flags_that_contradict_the_recorded_sweep(args, fragments, tmp_path, capsys, mnist_dir, no_ray):
    folder = recorded_sweep(tmp_path)
    before = (folder / "sweep.json").read_bytes()
    proc = sweep_error(capsys, mnist_dir, "--resume", "--output", str(tmp_path), *args)
    assert_usage_error(proc, f"--resume: {folder} was recorded with", *fragments)
    assert (folder / "sweep.json").read_bytes() == before


def test_resume_of_a_corrupt_sweep_record(tmp_path, capsys, mnist_dir, no_ray):
    folder = recorded_sweep(tmp_path)
    (folder / "sweep.json").write_text('{"name": "sweep-a", "preset": ')
    proc = sweep_error(capsys, mnist_dir, "--resume", str(folder))
    assert_usage_error(proc, f"--resume: {folder / 'sweep.json'} is not valid JSON")


def test_a_taken_name_is_not_reused(tmp_path, capsys, mnist_dir, no_ray):
    recorded_sweep(tmp_path)
    proc = sweep_error(capsys, mnist_dir, "--models", "cnn", "--output", str(tmp_path), "--name", "sweep-a")
    assert_usage_error(proc, "--name sweep-a:", "already holds a sweep")


def test_unreachable_address(tmp_path, capsys, mnist_dir, no_ray):
    from tests.ray_head import free_port

    proc = sweep_error(capsys, mnist_dir, "--models", "cnn", "--preset", "smoke", "--output", str(tmp_path),
                       "--address", f"127.0.0.1:{free_port()}")
    assert_usage_error(proc, "Ray cluster not reachable", "GCS address")


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"not ray")

    def log_message(self, *args):
        pass


def test_an_address_that_answers_but_is_not_ray(tmp_path, capsys, mnist_dir, no_ray):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proc = sweep_error(capsys, mnist_dir, "--models", "cnn", "--preset", "smoke", "--output", str(tmp_path),
                           "--address", f"127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert_usage_error(proc, "something answers there, but not a Ray cluster's GCS", "port 6379 by default")
    assert list(tmp_path.iterdir()) == []


def test_a_dashboard_url_is_not_an_address(tmp_path, capsys, mnist_dir, no_ray):
    proc = sweep_error(capsys, mnist_dir, "--models", "cnn", "--output", str(tmp_path),
                       "--address", "http://127.0.0.1:8265")
    assert_usage_error(proc, "that is a dashboard URL", "GCS address")


@pytest.mark.slow
def test_a_cluster_that_refuses_our_token(ray_local, tmp_path, mnist_dir):
    """A user's own process with another cluster's token, against the session's token-auth Ray."""
    from tests.cli import run_module

    address = ray_local.get_runtime_context().gcs_address
    proc = run_module("jobs.sweep", "--models", "cnn", "--preset", "smoke", "--output", str(tmp_path),
                      "--address", address, "--data-dir", str(mnist_dir),
                      env={"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64,
                           # gRPC honours https_proxy: the probe must go straight to the GCS, as Ray's own calls do.
                           "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}, timeout=60)
    assert_usage_error(proc, "the Ray cluster refused our token", "RAY_AUTH_TOKEN", "ray get-auth-token")
    assert list(tmp_path.iterdir()) == []


def planned_sweep(output, name="sweep-p"):
    """A recorded sweep whose plan is what the code makes of it now."""
    from tune.sweep.checks import configs_for
    from tune.sweep.plan import effective_plan

    folder = output / name
    folder.mkdir(parents=True)
    sweep = Sweep(folder, ["cnn", "vit"], name, "", "quick", "random", 2, 1, [])
    sweep.plan = effective_plan(sweep, {m: configs_for(m, "quick", []) for m in sweep.models})
    sweep.save()
    return folder


@pytest.mark.parametrize(("change", "fragments"), [
    # A git pull between the kill and the resume that widened cnn's lr range ...
    (lambda m: m.setitem(import_module("tune.sweep.spaces").SPACES["cnn"], "lr", {"loguniform": [1e-4, 1e-1]}),
     ["spaces.cnn.lr.loguniform: recorded [0.001, 0.01], now [0.0001, 0.1]"]),
    # ... added a key to vit's space ...
    (lambda m: m.setitem(import_module("tune.sweep.spaces").SPACES["vit"], "dropout", {"uniform": [0.0, 0.3]}),
     ["spaces.vit.dropout: recorded \"(absent)\""]),
    # ... or changed a run preset (the quick cnn's learning rate) or a sweep preset (samples).
    (lambda m: m.setitem(import_module("jobs.engine.presets").PRESETS["quick"]["models"], "cnn",
                         {"lr": 0.02}), ["configs.cnn.lr: recorded 0.003, now 0.02"]),
    (lambda m: m.setitem(import_module("tune.sweep.presets").SWEEPS["quick"], "samples", 3),
     ["sweep_preset.samples: recorded 2, now 3"]),
])
def test_resume_after_the_spaces_or_presets_changed(change, fragments, tmp_path, capsys, mnist_dir, no_ray,
                                                    monkeypatch):
    folder = planned_sweep(tmp_path)
    change(monkeypatch)
    proc = sweep_error(capsys, mnist_dir, "--resume", str(folder))
    assert_usage_error(proc, f"--resume: {folder} was started with other search spaces or presets", *fragments)


def test_a_plan_unchanged_resumes_and_an_old_absolute_default_storage_moves_with_the_folder(tmp_path):
    from tune.sweep.checks import configs_for
    from tune.sweep.plan import check_plan_unchanged

    folder = planned_sweep(tmp_path)
    sweep = Sweep.load(folder, "--resume")
    check_plan_unchanged(sweep, {m: configs_for(m, "quick", []) for m in sweep.models})  # raises on a change
    # An earlier version recorded the default storage as an absolute path into the folder where it ran.
    old = recorded_sweep(tmp_path / "before")
    moved = tmp_path / "elsewhere" / old.name
    moved.parent.mkdir()
    old.rename(moved)
    sweep = Sweep.load(moved, "--resume")
    assert sweep.storage == "" and sweep.tune_storage() == str(moved / "tune")
