"""When each trial started and ended on the driver's clock, kept in the trial's own folder of Tune's storage.

Tune's own timings leave out the seconds a trial spends starting its workers, so the sweep's timeline and its
cluster-busy figure take the driver's stamps (tune/sweep/tuner.py `TrialLog`). They are written as the trial starts and
ends, beside its result.json, so that a resumed sweep (another driver, maybe on another machine, the folder moved)
rebuilds a finished trial's record with the stamps it had, not with new ones. The storage may be a URI (s3://...):
pyarrow.fs throughout; a file is written beside its place and moved there (an object store's write is whole anyway).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pyarrow import fs as pafs

if TYPE_CHECKING:
    from ray.tune import Result
    from ray.tune.experiment import Trial

TIMES_FILE = "driver_times.json"


def stamp(trial: Trial, key: str) -> None:
    """Set KEY (started_at or finished_at) of Tune TRIAL's stamps to now, ISO 8601 in UTC. A trial run again (a
    lost node, a resumed search) gets new stamps: it holds the cluster again from then."""
    filesystem, folder = trial.storage.storage_filesystem, trial.storage.trial_fs_path
    path = f"{folder}/{TIMES_FILE}"
    times = {} if key == "started_at" else read_times(filesystem, path)
    times.update({"trial_id": trial.trial_id, key: datetime.now(UTC).isoformat()})
    filesystem.create_dir(folder, recursive=True)
    staged = f"{path}.{uuid.uuid4().hex}.tmp"
    with filesystem.open_output_stream(staged) as out:
        out.write(json.dumps(times).encode())
    filesystem.move(staged, path)


def driver_times(result: Result) -> dict[str, str]:
    """The stamps of the trial behind a Tune Result ({} when none were written: a trial of an earlier version)."""
    return read_times(result.filesystem, f"{result.path}/{TIMES_FILE}") if result.filesystem else {}


def read_times(filesystem: pafs.FileSystem, path: str) -> dict[str, str]:
    try:
        with filesystem.open_input_stream(path) as stream:
            times = json.loads(stream.read())
    except (FileNotFoundError, ValueError):  # none yet, or cut short by a crash: Tune's own timings then
        return {}
    return {k: v for k, v in times.items() if isinstance(v, str)} if isinstance(times, dict) else {}
