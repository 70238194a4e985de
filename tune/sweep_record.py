"""The sweep record: what sweep.json and trials.json hold, rewritten after every step of a sweep."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobs.engine.errors import UsageError
from tune.sweep_folder import SWEEP_FILE, TRIALS_FILE


@dataclass
class Sweep:
    """What sweep.json records; rewritten after every step."""

    output: Path
    name: str
    storage: str
    preset: str
    models: list[str]
    search: str
    samples: int
    seeds: int
    overrides: list[str]
    spaces: dict[str, dict] = field(default_factory=dict)
    search_seed: int = 0
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    finished: str | None = None
    wall_time_s: float = 0.0
    env: dict[str, Any] = field(default_factory=dict)
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    cluster_resources: dict[str, float] = field(default_factory=dict)
    cluster_busy: float | None = None  # resource-seconds held by trials and retrains / (wall time x cluster total)
    trials: list[dict[str, Any]] = field(default_factory=list)

    def save(self) -> None:
        record = {k: v for k, v in self.__dict__.items() if k not in ("output", "trials")}
        write_atomically(self.output / SWEEP_FILE, record)
        write_atomically(self.output / TRIALS_FILE, self.trials)

    @classmethod
    def load(cls, folder: Path) -> Sweep:
        path = folder / SWEEP_FILE
        try:
            record = json.loads(path.read_text())
            trials_path = folder / TRIALS_FILE
            trials = json.loads(trials_path.read_text()) if trials_path.is_file() else []
            return cls(output=folder, trials=trials, **record)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--resume: {path} is not valid JSON ({exc})") from None
        except TypeError as exc:  # a missing or unknown field: not a sweep.json this version wrote
            raise UsageError(f"--resume: {path} is not a sweep record ({exc})") from None


def write_atomically(path: Path, content: Any) -> None:
    # A driver killed mid-write must leave the previous record, which --resume reads, not half of a new one.
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(content, indent=1, default=str))
    os.replace(temporary, path)
