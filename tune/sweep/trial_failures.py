"""A trial that lost its node is run again from its last checkpoint; a trial that failed for its own config is not.

Tune retries every failure of a trial alike (FailureConfig counts them, ray/tune/experiment/trial.py `should_recover`),
and a resumed search with `resume_errored` reruns every errored trial alike. What tells the two apart is recorded
here: when a trial's own code raises, the reason goes to one small file in the sweep's storage, beside the
trials' Ray Train runs (readable from every node, and from an s3:// storage). A rerun of that trial, a Tune retry
or a resume, finds it and raises `OwnFailure` with the same reason at once, without training: a divergence, a
config that crashes or an injected `fail_at_epoch` stays failed, even where a rerun from the trial's last checkpoint
would have passed it. A trial that lost its node records nothing, so its rerun trains.
"""

from __future__ import annotations

import uuid
from typing import Any

from pyarrow import fs as pafs
from ray import tune as ray_tune
from ray.tune.experiment import Trial

from jobs.engine.train.progress import say

FOLDER = "own-failures"


class OwnFailure(RuntimeError):
    """The trial failed for its own config earlier; the message is the reason recorded then."""


def marker(train_storage: str, trial_id: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and path of TRIAL_ID's record under TRAIN_STORAGE (a local folder or a URI)."""
    filesystem, root = pafs.FileSystem.from_uri(train_storage)
    return filesystem, f"{root.rstrip('/')}/{FOLDER}/{trial_id}.txt"


def record_own_failure(train_storage: str, trial_id: str, reason: str) -> None:
    """Write the reason whole or not at all: a temporary file beside it, then moved into place."""
    filesystem, path = marker(train_storage, trial_id)
    filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    staged = f"{path}.{uuid.uuid4().hex}.tmp"
    with filesystem.open_output_stream(staged) as out:
        out.write(reason.encode())
    filesystem.move(staged, path)


def recorded_own_failure(train_storage: str, trial_id: str) -> str | None:
    """The reason TRIAL_ID failed for its own config, or None when it never did."""
    filesystem, path = marker(train_storage, trial_id)
    if filesystem.get_file_info(path).type != pafs.FileType.File:
        return None
    with filesystem.open_input_stream(path) as stream:
        return stream.readall().decode()


class TrialRetries(ray_tune.Callback):
    """One line when Tune runs a trial again: from its last checkpoint after it lost its node, worker process or
    actor, or, for a trial that failed for its own config, only to fail at once with the recorded reason."""

    def __init__(self, model: str, train_storage: str) -> None:
        self.model, self.train_storage = model, train_storage

    def on_trial_recover(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        if recorded_own_failure(self.train_storage, trial.trial_id) is not None:
            # Its own failure: the rerun Tune has queued fails at once with the recorded reason, but each costs a
            # new actor process (seconds of start-up and imports). Counting this failure as the last allowed makes
            # that rerun the only one (ray/tune/experiment/trial.py `should_recover`: num_failures <= max_failures).
            # The trial's failed line says why, once.
            trial.run_metadata.num_failures = max(trial.run_metadata.num_failures, trial.max_failures)
            return
        epoch = (trial.last_result or {}).get("epoch", 0)
        say(f"  {self.model} trial {trial.trial_id}: lost its worker (node, process or actor gone; retry "
            f"{trial.num_failures} of {trial.max_failures}): run again from its last checkpoint (epoch {epoch:g}) on "
            "the nodes that remain")
