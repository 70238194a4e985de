"""Which MLflow tracker a command logs to (--mlflow, else MLFLOW_TRACKING_URI), checked before Ray starts, and the
one guard every MLflow call goes through: its first failure is said once and ends the logging, never the sweep."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from jobs.engine.errors import UsageError
from jobs.engine.run.loopback import LOCAL_HOSTS, bypass_proxies
from jobs.engine.train.progress import say

if TYPE_CHECKING:
    from mlflow import MlflowClient

T = TypeVar("T")
TRACKING_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
DEFAULT_EXPERIMENT = "archsweep"
# MLflow's defaults retry a request 7 times with a growing backoff, 120 s each: a tracker that stops answering would
# hold Tune's driver loop for minutes at every call. With these its first failure costs seconds, and is the last
# (no retry: the guard asks a failed tracker nothing more, and `jobs.report --mlflow` logs what it missed).
# The rest keep MLflow's own chatter (a link per run, usage telemetry) out of the sweep's output and off the network.
QUIET_DEFAULTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "10", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                  "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
                  "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
CHECK = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "5", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}  # the check before Ray: one try


def tracker_uri(flag: str | None) -> str | None:
    """The tracker a command logs to: --mlflow, else MLFLOW_TRACKING_URI, else none."""
    uri = flag if flag is not None else os.environ.get(TRACKING_ENV) or None
    if uri is not None and not uri.strip():
        raise UsageError("--mlflow: give the tracking server's URI, e.g. http://127.0.0.1:5000")
    return uri.strip() if uri else None


def quiet() -> None:
    """MLflow's settings for a tracker that must never hold up a sweep, where the user set none of their own."""
    for key, value in QUIET_DEFAULTS.items():
        os.environ.setdefault(key, value)
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # "Created version 1 of model ..." and the like


@contextmanager
def settings(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def check_tracker(uri: str, flag: str = "--mlflow") -> None:
    """One quick request to URI's tracking server; a UsageError, one line, when nothing answers there."""
    quiet()
    if urlsplit(uri).hostname in LOCAL_HOSTS:  # a server on this machine is never behind the user's HTTP proxy
        bypass_proxies(None)
    try:
        from mlflow import MlflowClient

        with settings(CHECK):
            MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - whatever MLflow raises, the user's fix is the URI or the server
        raise UsageError(f"{flag} {uri}: no MLflow tracking server answers there ({first_line(exc)})") from None


def first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:limit]


@dataclass
class Tracker:
    """One tracking server and experiment, for one command: the MLflow client, made on first use, and the guard."""

    uri: str
    experiment: str = field(default_factory=lambda: os.environ.get(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT)
    what: str = "the sweep"  # what goes on when the tracker fails: "the sweep", "the run"
    _client: MlflowClient | None = field(default=None, repr=False)
    _experiment_id: str | None = field(default=None, repr=False)
    down: bool = field(default=False, repr=False)  # failed once: said once, called no more
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self) -> MlflowClient:
        if self._client is None:
            quiet()
            from mlflow import MlflowClient

            self._client = MlflowClient(self.uri)
        return self._client

    def experiment_id(self) -> str:
        if self._experiment_id is None:
            client = self.client()
            found = client.get_experiment_by_name(self.experiment)
            if found is None:
                from mlflow.exceptions import MlflowException

                try:
                    self._experiment_id = client.create_experiment(self.experiment)
                except MlflowException:  # another command created it since: use theirs
                    self._experiment_id = client.get_experiment_by_name(self.experiment).experiment_id
            else:
                self._experiment_id = found.experiment_id
        return self._experiment_id

    def attempt(self, what: str, action: Callable[[], T]) -> T | None:
        """ACTION's value, or None when the tracker failed at it or before; the first failure is said once."""
        if self.down:
            return None
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - a tracker's failure is never worth a sweep
            with self._lock:  # the architectures' threads log at the same time: one of them says it
                first, self.down = not self.down, True
            if first:
                later = "" if self.what == "the run" else (
                    f" (`python -m jobs.report FOLDER --mlflow {self.uri}` logs a finished sweep once it is back)")
                say(f"mlflow: {self.uri} failed ({what}: {first_line(exc)}); {self.what} goes on without it{later}")
            return None
