"""Sweep folders written by earlier versions, read as this version's records: the one place that knows what changed.

Every reader of a sweep folder (a resume, `python -m jobs.report`, the tests' reference sweeps) goes through
`upgrade_sweep`, `upgrade_trial` and `read_result` at load time, so that nothing downstream checks for an older
form. Each step below says what an earlier version wrote; a record of this version passes through unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path

from jobs.engine.atomic import JsonValue
from jobs.engine.run_result import RunResult

Json = dict[str, JsonValue]  # a record (a JSON object) as json.loads gives it, before it is typed
Step = Callable[[Json], Json]

# "cpu (2 cores, 1 threads)": the plural after a count of one, as versions before the cpus module wrote it.
ONE_OF_MANY = re.compile(r"(?<![\d.,])(1 (?:thread|core|CPU|GPU|worker))s\b")


def default_storage_moves_with_the_folder(folder: Path) -> Step:
    """Versions before sweep folders moved wrote the default --storage as an absolute path to the folder's tune/;
    today's default is "" (the folder's own tune/, wherever the folder is now)."""
    def step(record: Json) -> Json:
        storage = str(record.get("storage") or "")
        # The URI test on the text: Path("s3://b/x") is "s3:/b/x", and a URI is never the folder's own tune/.
        if "://" not in storage and Path(storage).parts[-2:] == (record.get("name"), "tune"):  # its tune/ then
            return {**record, "storage": ""}
        return record
    return step


def device_in_the_singular(record: Json) -> Json:
    """result.json's env.device and serving.device(_name): "1 threads" and the like, as an older run recorded
    them, in the singular, so that the report prints them as they are."""
    record = dict(record)
    for part in ("env", "serving"):
        inner = record.get(part)
        if isinstance(inner, dict):
            record[part] = {key: ONE_OF_MANY.sub(r"\1", value) if key in ("device", "device_name")
                            and isinstance(value, str) else value for key, value in inner.items()}
    return record


def known_fields(record_type: type) -> Step:
    """Keys an earlier version wrote and this one no longer has are dropped; missing ones take their defaults."""
    names = {f.name for f in dataclasses.fields(record_type)}
    return lambda record: {key: value for key, value in record.items() if key in names}


def apply(record: Json, steps: list[Step]) -> Json:
    for step in steps:
        record = step(record)
    return record


def upgrade_sweep(record: Json, folder: Path, fields: type) -> Json:
    """sweep.json of FOLDER as this version's `Sweep` (FIELDS) takes it; ValueError when it is not a sweep record."""
    if not isinstance(record, dict) or not isinstance(record.get("models"), list):
        raise ValueError("it has no list of models")
    return apply(record, [default_storage_moves_with_the_folder(folder), known_fields(fields)])


def upgrade_status(record: Json | None, fields: type) -> Json:
    """One architecture's entry of sweep.json's status, as this version's `ModelStatus` (FIELDS) takes it."""
    return apply(record or {}, [known_fields(fields)])


def upgrade_trial(record: Json, fields: type) -> Json:
    """One trials.json entry as this version's `TrialRecord` (FIELDS) takes it; ValueError when it is not one."""
    if not isinstance(record, dict) or not {"model", "trial_id", "status"} <= set(record):
        raise ValueError(f"not a trial record: {str(record)[:80]}")
    return apply(record, [known_fields(fields)])


def upgrade_result(record: Json) -> Json:
    """One result.json as this version's `RunResult` takes it; ValueError when it is not a run result."""
    if not isinstance(record, dict) or "model" not in record or "config" not in record:
        raise ValueError("not a run result: no model and config")
    return apply(record, [device_in_the_singular, known_fields(RunResult)])


def read_result(path: Path) -> RunResult:
    """PATH's result.json, of this or an earlier version. Raises OSError, ValueError (json.JSONDecodeError: empty
    or cut short; not a run result, or its model or config of the wrong type) or TypeError."""
    result = RunResult(**upgrade_result(json.loads(Path(path).read_text())))
    if not isinstance(result.model, str) or not isinstance(result.config, dict):
        raise ValueError("its model is not a name or its config not a mapping")
    return result
