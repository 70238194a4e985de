"""A real MLflow tracking server on 127.0.0.1: `mlflow server` from .venv-mlflow (requirements-mlflow.txt; its
pyarrow pin clashes with Ray's, so it has a venv of its own, as kfp has), with a SQLite backend store and a local
artifact folder, a child process in a process group of its own on a free port, ended by its id
(tests/ray_head.py `stop_group`). Read back with MLflow's own client (`MlflowClient`, from the main venv).
"""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.paths import REPO, venv_tool
from tests.ray_head import free_port, stop_group, wait_until_answers

MLFLOW = REPO / ".venv-mlflow" / "bin" / "mlflow"


def mlflow_available() -> bool:
    """Whether .venv-mlflow's server is there; under CI it must be (a failure, not a skip, else)."""
    return MLFLOW.is_file() or bool(os.environ.get("CI"))


def mlflow_command() -> str:
    return venv_tool(MLFLOW, "mlflow-install")


@dataclass
class MlflowServer:
    uri: str  # http://127.0.0.1:PORT
    folder: Path  # its SQLite store (mlflow.db), artifacts/ and server.log
    process: subprocess.Popen

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(self.uri)

    def wait(self, timeout_s: float = 120) -> MlflowServer:
        """Self, once its /health answers."""
        wait_until_answers(f"{self.uri}/health", self.process, "mlflow server",
                           lambda: (self.folder / "server.log").read_text(errors="replace"), timeout_s)
        return self

    def stop(self) -> None:
        stop_group(self.process)


def start_mlflow_server(folder: Path) -> MlflowServer:
    """A server keeping its runs in FOLDER, starting (`wait` for it); a process group of its own, to `stop`."""
    command, port = mlflow_command(), free_port()
    folder.mkdir(parents=True, exist_ok=True)
    # One worker: the tests' requests come one at a time, and each worker is a process on a 2-core machine.
    args = [command, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination", str(folder / "artifacts")]
    # No job runner (huey consumers, for GenAI evaluation jobs): processes of its own that the tests never use.
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    # Its log (a line per request) goes to a file: a pipe nobody reads would fill and stop the server.
    with open(folder / "server.log", "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=log, env=env, start_new_session=True)
    return MlflowServer(f"http://127.0.0.1:{port}", folder, process)


@contextmanager
def mlflow_server(folder: Path, timeout_s: float = 120) -> Iterator[MlflowServer]:
    """A server keeping its runs in FOLDER, up (its /health answers) when yielded, ended on the way out."""
    server = start_mlflow_server(folder)
    try:
        yield server.wait(timeout_s)
    finally:
        server.stop()


@functools.cache
def session_servers(config: pytest.Config) -> dict[str, MlflowServer]:
    """The session's servers (each pytest-xdist worker's), started at once and not waited for: "shared", which
    every test that logs uses (each to an experiment of its own, MLFLOW_EXPERIMENT_NAME), and "to_stop", which
    tests/test_mlflow_outage.py stops. A server takes ~8 s of 2 cores to start: conftest's `pytest_runtest_setup`
    calls this at the first test that starts processes in a session that will need them, so that they start in the
    time those tests spend waiting on Ray, not when the reference sweep asks. Ended when the session ends."""
    servers = {}
    for name in ("shared", "to_stop"):
        servers[name] = start_mlflow_server(Path(tempfile.mkdtemp(prefix=f"archsweep-mlflow-{name}-")))
        config.add_cleanup(servers[name].stop)
    return servers


def session_mlflow_server(config: pytest.Config) -> MlflowServer:
    """The session's shared server, up."""
    return session_servers(config)["shared"].wait()


def needs_a_server(item: pytest.Item) -> bool:
    """Whether ITEM logs to a session server: the tracker's tests, and every user of the reference sweep (logged
    live)."""
    return item.path.name.startswith("test_mlflow_") or "reference_sweep" in getattr(item, "fixturenames", ())


def nested(server: MlflowServer, experiment: str) -> tuple[object, list]:
    """The one parent run of EXPERIMENT (asserted one) and its nested runs."""
    client = server.client()
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r} at {server.uri}"
    runs = client.search_runs([found.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in parents]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == len(runs) - 1, "a run outside the sweep's parent"
    return parents[0], children


def keep_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_PROXY and no_proxy back as they were after the test: the tracker's check adds the loopback names to them
    (tune/track/tracker.py), as Ray's start does."""
    for var in ("NO_PROXY", "no_proxy"):
        if var in os.environ:
            monkeypatch.setenv(var, os.environ[var])
        else:
            monkeypatch.delenv(var, raising=False)
