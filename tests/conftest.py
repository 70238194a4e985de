"""Shared fixtures: the real MNIST files, one local Ray and one token-auth Ray head for the whole session, and
small runs through the local Ray."""

from __future__ import annotations

import json
import multiprocessing.process
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.paths import REPO, SHARED_MNIST

__all__ = ["REPO"]  # modules that still import it from here get the one definition in tests/paths.py

# The environment of every Ray process the session starts: Ray workers inherit it from the process that starts Ray, and
# Ray picks the address it binds to when it is first imported (see jobs/engine/run/loopback.py). pytest_configure sets
# it before the test modules are collected (they import ray), so before `ray_local` can start Ray.
SESSION_ENVIRONMENT = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # every Ray process binds to 127.0.0.1
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray Train's controller notices a finished worker group at its next health check (every 2 s by default);
    # the suite starts ~30 trainers of a few seconds' work each, so polling faster saves about a minute of CI.
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.25",
}
_saved_environment: dict[str, str | None] = {}


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Two workers on two cores: torch's default of a thread per core in each made them spin against each other
        # (the cnn smoke run took 14.5 s beside the other worker, 2.1 s alone); one thread each halves nothing.
        import torch

        torch.set_num_threads(1)
    # A private, empty torch hub cache: no test finds real ImageNet weights, or leaves fakes, in the user's cache.
    torch_home = tempfile.mkdtemp(prefix="archsweep-torch-home-")
    config.add_cleanup(lambda: shutil.rmtree(torch_home, ignore_errors=True))
    for key, value in {**SESSION_ENVIRONMENT, "TORCH_HOME": torch_home}.items():
        _saved_environment[key] = os.environ.get(key)
        os.environ[key] = value


# A test that asks for one of these starts Ray (or needs a sweep that did): marked `ray` at collection.
RAY_FIXTURES = frozenset({"ray_local", "data_ref", "ray_head_cluster", "reference_sweep", "train_events"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--no-processes", action="store_true",
                     help="run only the tests marked neither `ray` nor `process`, and fail any of them that starts a "
                          "process all the same (`make test-fast`, between edits)")


# `make test` runs in two pytest-xdist workers with `--dist loadgroup`: every test that starts Ray or a process in
# one worker, in order, so that the session's Ray, reference sweep and MLflow servers start once and the
# process-heavy tests do not fight each other for the 2 cores; the rest (those slow for their own training too) in
# the other, in the first's idle time (Ray's start-ups, waits on nodes and heads), about a third of its wall time.
def in_group(item: pytest.Item, group: str) -> None:
    """Put ITEM in pytest-xdist's work unit GROUP, as its `xdist_group` mark would: the group is the part of the
    test's id after '@'. pytest-xdist 3.8 writes that suffix to `item._nodeid`, which pytest 9.2 no longer reads
    (its ids live in `item._id`), so the mark alone groups nothing; this writes it where pytest 9.2 reads it."""
    from _pytest.nodeid import coerce_node_id

    if "@" not in item.nodeid.rsplit("]", 1)[-1]:
        item._id = coerce_node_id(f"{item.nodeid}@{group}")


def starts_processes(item: pytest.Item) -> bool:
    """Whether ITEM starts Ray or another process (marked `ray` at collection, or `process` by hand)."""
    return bool(item.get_closest_marker("ray") or item.get_closest_marker("process"))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, starting = [], []
    for item in items:
        if RAY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ray)
        starts = starts_processes(item)
        if starts:
            item.add_marker(pytest.mark.slow)  # `-m "not slow"` skips every test that starts a process
            starting.append(item)
        else:
            kept.append(item)
        if getattr(config.option, "loadgroup", False):  # pytest-xdist sets it in its workers under loadgroup
            # A test slow only for its own training (vgg16's step, resnet18's smoke run) starts nothing: it runs
            # beside the fast ones, in the Ray tests' idle time, not after them in the processes' worker.
            in_group(item, "processes" if starts else "in_process")
    if config.getoption("--no-processes"):
        config.hook.pytest_deselected(items=starting)
        items[:] = kept


@pytest.fixture(scope="session", autouse=True)
def no_process_in_the_fast_tier(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under --no-processes a test that starts a process (Ray's included), in its body or in any fixture it uses,
    fails, naming the marker it lacks, so the fast tier stays what it says. Session-scoped, so that it is in place
    before every other fixture; installed in each pytest-xdist worker, never in the controller that starts them."""
    if not request.config.getoption("--no-processes"):
        yield
        return
    popen = subprocess.Popen.__init__

    def refuse(*args, **kwargs):
        raise AssertionError("add @pytest.mark.process: this test starts a process (make test-fast runs none)")

    def only_probes(self, args, *more, **kwargs):
        # platform.processor() asks `uname -p` once per interpreter: a probe of the machine, not a process of ours.
        if list(args if isinstance(args, (list, tuple)) else [args])[:1] != ["uname"]:
            refuse()
        popen(self, args, *more, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", only_probes)
        patch.setattr(multiprocessing.process.BaseProcess, "start", refuse)
        for name in ("system", "posix_spawn", "posix_spawnp"):
            patch.setattr(os, name, refuse)
        yield


MLFLOW_LOOKED = pytest.StashKey[bool]()


def pytest_runtest_setup(item: pytest.Item) -> None:
    # The first test that starts processes, in a session that logs to MLflow, starts its servers, not waited for
    # (tests/mlflow_server.py).
    if starts_processes(item) and not item.config.stash.get(MLFLOW_LOOKED, False):
        from tests.mlflow_server import mlflow_available, needs_a_server, session_servers

        item.config.stash[MLFLOW_LOOKED] = True
        if mlflow_available() and any(needs_a_server(other) for other in item.session.items):
            session_servers(item.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    for key, value in _saved_environment.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST IDX files: MNIST_DATA_DIR (as CI sets it) or ../shared/data/mnist."""
    folder = Path(os.environ.get("MNIST_DATA_DIR", SHARED_MNIST)).resolve()
    if not folder.is_dir():
        pytest.fail(f"MNIST files not found at {folder}; set MNIST_DATA_DIR")
    return folder


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path):
    from jobs.engine.data.mnist import load_mnist

    return load_mnist(str(mnist_dir))


@pytest.fixture(scope="session")
def ray_local():
    """One embedded Ray on 127.0.0.1 (token auth as Ray 2.60 defaults), shared by every in-process run."""
    import ray

    from jobs.engine.run.cluster import connect

    connect(None)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_head_cluster():
    """A real Ray head on 127.0.0.1 with token auth, started once for the `ray job submit` tests of the session.

    Yields tests.ray_head.RayHead: `url` (the dashboard, for `ray job submit --address`) and `env` (the
    environment a client needs, token included).
    """
    from tests.ray_head import ray_head

    # 8 logical CPUs on this 2-core machine, as a small cluster has: the sweep submitted to it runs trials of
    # several architectures at the same time (tests/test_sweep_submit.py shows they overlap).
    with ray_head(num_cpus=8) as head:
        yield head


@pytest.fixture(scope="session")
def data_ref(ray_local, mnist):
    return ray_local.put(mnist)


@pytest.fixture
def train_events(monkeypatch, tmp_path) -> Callable[[], list[dict]]:
    """What Ray Train's controller saw during this test's runs, in order; returns a function that reads them.

    Each event is {"reports": [one metrics dict per rank], "checkpoint": bool} after every ray.train.report,
    or {"exceptions": {rank: message}} after a worker raised.
    """
    from ray.train import UserCallback

    from jobs.engine.run import launch

    log = tmp_path / "train-events.jsonl"

    # Defined here so that Ray ships it to the controller by value (and imports ray only once the session runs).
    class EventLog(UserCallback):
        def after_report(self, run_context, metrics, checkpoint) -> None:
            write({"reports": metrics, "checkpoint": checkpoint is not None})

        def after_exception(self, run_context, worker_exceptions) -> None:
            write({"exceptions": {str(rank): str(exc) for rank, exc in worker_exceptions.items()}})

    def write(event: dict) -> None:
        with open(log, "a") as out:  # the controller runs on this machine
            out.write(json.dumps(event, default=str) + "\n")

    make_trainer = launch.make_trainer

    def make_logged_trainer(*args, callbacks: list | None = None, **kwargs):
        return make_trainer(*args, callbacks=[*(callbacks or []), EventLog()], **kwargs)

    monkeypatch.setattr(launch, "make_trainer", make_logged_trainer)
    return lambda: [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless Chromium, for the report's browser tests (`make test` installs it)."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium not found; `make test` installs it, or: apt-get install -y chromium")
    return path


@pytest.fixture(scope="session")
def reference_sweep(request, tmp_path_factory, mnist_dir):
    """The session's one real `python -m jobs.sweep` (tests/reference_sweep.py), run when a test first asks; logged
    to the session's MLflow server where .venv-mlflow is there (CI: always, tests/mlflow_server.py)."""
    from tests.mlflow_server import mlflow_available, session_mlflow_server
    from tests.reference_sweep import run_reference_sweep

    uri = session_mlflow_server(request.config).uri if mlflow_available() else None
    with run_reference_sweep(tmp_path_factory.mktemp("reference"), mnist_dir, uri) as sweep:
        yield sweep
