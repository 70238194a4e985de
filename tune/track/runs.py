"""A sweep's runs in the tracker: its parent run, found by the sweep's tag or made once, and the nested runs under
it, each found by its key (trial/MODEL/ID, retrain/MODEL/seedK): what is there already is never logged twice."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from jobs.engine.finite import is_finite
from tune.sweep.record import Sweep
from tune.track.tracker import Tracker

# The sweeps this process logs, by key. Tune pickles its callbacks into a search's state and a resumed search runs
# unpickled copies the sweep never sees: a trial callback (tune/track/trials.py) keeps only the sweep's key and finds
# the live runs here; a search resumed without --mlflow finds none and logs nothing.
ACTIVE: dict[str, SweepRuns] = {}
SWEEP_TAG = "archsweep.sweep"  # on the parent: the sweep's name and start, which a resume and a copy keep
KEY_TAG = "archsweep.key"  # on a nested run: what it records, unique under its parent
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: what nests a run under another in its UI
UNFINISHED = ("RUNNING", "SCHEDULED")  # a run whose logging stopped part-way (its tracker or driver went away)
# MLflow's limits: a parameter's value, and the entries of one log_batch request.
PARAM_CHARS, PARAMS_PER_BATCH, METRICS_PER_BATCH = 6000, 100, 1000
# The flags that define a sweep (sweep.json), the parent run's parameters; its plan goes whole as plan.json.
SWEEP_PARAMS = ("name", "preset", "models", "search", "samples", "seeds", "search_seed", "overrides", "spaces",
                "storage", "objective", "budget", "keep_trial_checkpoints", "code", "started")


@dataclass(frozen=True)
class Nested:
    """A nested run as this process last knew it: kept up to date here, never asked for again."""

    run_id: str
    status: str  # MLflow's: RUNNING, FINISHED, FAILED, ...


def sweep_key(sweep: Sweep) -> str:
    return f"{sweep.name}@{sweep.started}"


@dataclass
class SweepRuns:
    """One sweep's parent run and its nested runs in TRACKER, looked up once and kept up to date as they are made;
    the architectures' threads share it."""

    tracker: Tracker
    key: str
    parent_id: str | None = None
    _children: dict[str, Nested] | None = field(default=None, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    made: int = 0  # nested runs this process made (a run found whole is not remade)
    _queue: ThreadPoolExecutor | None = field(default=None, repr=False)
    _pending: list[Future] = field(default_factory=list, repr=False)

    def later(self, what: str, action: Callable[[], object]) -> None:
        """ACTION through the tracker's guard on this sweep's one logging thread, in the order given: a request to
        the tracker (a retrain's ONNX model and checkpoint take seconds) never holds up Tune's loop or a retrain."""
        if self.tracker.down:
            return
        with self._lock:
            if self._queue is None:
                self._queue = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow")
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(self._queue.submit(self.tracker.attempt, what, action))

    def drain(self) -> None:
        """Wait until everything given to `later` is logged (or the tracker failed)."""
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def parent(self, sweep: Sweep) -> str:
        """The parent run's id: the one tagged with this sweep, else a new one with the sweep's flags and plan."""
        with self._lock:
            if self.parent_id is None:
                client, experiment = self.tracker.client(), self.tracker.experiment_id()
                found = client.search_runs([experiment], f"tags.`{SWEEP_TAG}` = '{self.key}'", max_results=1)
                if found:
                    self.parent_id = found[0].info.run_id
                else:
                    run = client.create_run(experiment, run_name=sweep.name,
                                            tags={SWEEP_TAG: self.key, "archsweep.folder": str(sweep.output)})
                    self.parent_id = run.info.run_id
                    record = sweep.to_json()
                    log_batch(self.tracker, self.parent_id, params={k: record.get(k) for k in SWEEP_PARAMS})
                    client.log_dict(self.parent_id, sweep.plan, "plan.json")
            return self.parent_id

    def children(self) -> dict[str, Nested]:
        """The nested runs already there, by key (one search, paged)."""
        with self._lock:
            if self._children is None:
                assert self.parent_id is not None, "parent() first"
                client, found, token = self.tracker.client(), {}, None
                while True:
                    page = client.search_runs([self.tracker.experiment_id()],
                                              f"tags.`{PARENT_TAG}` = '{self.parent_id}'", max_results=1000,
                                              page_token=token)
                    found.update({run.data.tags[KEY_TAG]: Nested(run.info.run_id, run.info.status) for run in page
                                  if KEY_TAG in run.data.tags})
                    token = page.token
                    if not token:
                        break
                self._children = found
            return self._children

    def whole(self, key: str) -> bool:
        """Whether KEY's run is there and was ended (its logging did not stop part-way)."""
        run = self.children().get(key)
        return run is not None and run.status not in UNFINISHED

    def child(self, key: str, name: str, tags: dict[str, str]) -> str:
        """A new nested run for KEY; one that a tracker or driver left unfinished is deleted first, so that its
        half record is replaced rather than doubled."""
        with self._lock:
            client, old = self.tracker.client(), self.children().pop(key, None)
            if old is not None:
                client.delete_run(old.run_id)
            run = client.create_run(self.tracker.experiment_id(), run_name=name,
                                    tags={PARENT_TAG: self.parent_id or "", KEY_TAG: key, **tags})
            self.children()[key] = Nested(run.info.run_id, run.info.status)
            self.made += 1
            return run.info.run_id

    def ended(self, key: str, status: str = "FINISHED") -> None:
        with self._lock:
            run = self.children()[key]
            self.tracker.client().set_terminated(run.run_id, status)
            self.children()[key] = Nested(run.run_id, status)


def param_value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:PARAM_CHARS]


def numbers(values: dict[str, object], prefix: str = "") -> dict[str, float]:
    """The finite numbers of VALUES (not booleans), as metrics named PREFIX + key."""
    return {f"{prefix}{k}": float(v) for k, v in values.items() if is_finite(v)}


def log_batch(tracker: Tracker, run_id: str, metrics: Sequence[tuple[str, float, int]] = (),
              params: dict[str, object] | None = None, model_id: str | None = None) -> None:
    """METRICS as (key, value, step) and PARAMS on RUN_ID, in as few requests as MLflow's limits allow; the
    step-0 metrics (a finished run's figures) also on the logged model MODEL_ID, as MLflow's log_model links them."""
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    entries = [Param(k, param_value(v)) for k, v in (params or {}).items() if v is not None]
    points = [Metric(k, v, now, step, model_id=model_id if step == 0 else None) for k, v, step in metrics]
    client = tracker.client()
    for start in range(0, len(entries), PARAMS_PER_BATCH):
        client.log_batch(run_id, params=entries[start:start + PARAMS_PER_BATCH])
    for start in range(0, len(points), METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=points[start:start + METRICS_PER_BATCH])
