"""The commands' tracking flags: --mlflow URI (else MLFLOW_TRACKING_URI) and, for a sweep, --register NAME; read
and checked here, before Ray starts, without importing MLflow until a tracker is asked for."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from jobs.engine.errors import UsageError
from tune.track.tracker import Tracker, check_tracker, tracker_uri


def add_flags(parser: argparse.ArgumentParser, register: bool = True) -> None:
    parser.add_argument("--mlflow", metavar="URI",
                        help="log to this MLflow tracking server, e.g. http://127.0.0.1:5000 (default: "
                             "$MLFLOW_TRACKING_URI; the experiment: $MLFLOW_EXPERIMENT_NAME, else archsweep)")
    if register:
        parser.add_argument("--register", metavar="NAME",
                            help="with a tracker: register the winner's ONNX model (the highest mean test "
                                 "accuracy) as a version of NAME in its model registry")


@dataclass(frozen=True)
class Tracking:
    uri: str | None = None
    register: str | None = None

    @classmethod
    def take(cls, flags: dict[str, object]) -> Tracking:
        """The tracking flags, removed from FLAGS (vars of the parsed namespace)."""
        uri, register = flags.pop("mlflow", None), flags.pop("register", None)
        tracking = cls(tracker_uri(uri if isinstance(uri, str) else None), register if isinstance(register, str)
                       else None)
        if tracking.register is not None and (not tracking.register.strip() or tracking.uri is None):
            raise UsageError("--register NAME needs a tracker (--mlflow URI or MLFLOW_TRACKING_URI) and a name")
        return tracking

    def check(self, what: str = "the sweep") -> Tracker | None:
        """The tracker, once one request to it has been answered (a UsageError, one line, else); None without one."""
        if self.uri is None:
            return None
        check_tracker(self.uri)
        return Tracker(self.uri, what=what)
