"""The sweep record: the declared types of sweep.json (`Sweep`, with a `ModelStatus` per architecture) and of
trials.json (a list of tune/sweep/trials.py `TrialRecord`), rewritten after every step of a sweep."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jobs.engine.atomic import JsonValue, write_atomically
from jobs.engine.errors import UsageError
from models.registry import Config
from tune.sweep.folder import SWEEP_FILE, TRIALS_FILE, TUNE_STORAGE
from tune.sweep.prices import Prices
from tune.sweep.torn_records import left_out, set_aside, why_torn
from tune.sweep.trials import TrialRecord
from tune.sweep.upgrade import Json, upgrade_status, upgrade_sweep


@dataclass
class ModelStatus:
    """Where one architecture of the sweep stands: running, ok or failed (with the reason), and its best trial."""

    status: str = "missing"
    reason: str | None = None
    best_config: Config | None = None
    best_trial_id: str | None = None
    best_val_accuracy: float | None = None
    trials: int | None = None
    failed_trials: int | None = None
    why_chosen: str | None = None  # why best_config is the one retrained (tune/sweep/trials.py why_chosen)

    @classmethod
    def from_json(cls, record: Json | None) -> ModelStatus:
        return cls(**upgrade_status(record, cls))


@dataclass
class Sweep:
    """What sweep.json records; rewritten after every step. `output` is the sweep's own folder (not stored)."""

    output: Path
    models: list[str]
    name: str = ""
    storage: str = ""
    preset: str = "quick"
    search: str = "random"
    samples: int = 1
    seeds: int = 1
    overrides: list[str] = field(default_factory=list)
    spaces: dict[str, dict] = field(default_factory=dict)
    # What the code made of the flags when the sweep started (tune/sweep/plan.py effective_plan): the searched
    # spaces, base configs and sweep preset, so that a resume can tell they have not changed since.
    plan: dict[str, JsonValue] = field(default_factory=dict)
    search_seed: int = 0
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    finished: str | None = None
    wall_time_s: float = 0.0
    env: dict[str, JsonValue] = field(default_factory=dict)
    status: dict[str, ModelStatus] = field(default_factory=dict)
    cluster_resources: dict[str, float] = field(default_factory=dict)
    cluster_busy: float | None = None  # resource-seconds held by trials and retrains / (wall time x cluster total)
    # --price of the sweep (tune/sweep/prices.py), stored as its to_json(); None, stored as {}: the defaults.
    prices: Prices | None = None
    # --keep-trial-checkpoints: else an architecture's trial checkpoints are removed once its best trial is chosen.
    keep_trial_checkpoints: bool = False
    # --objective (accuracy, or accuracy,COST) and --budget's limit on COST (tune/sweep/objectives.py).
    objective: str = "accuracy"
    budget: float | None = None
    code: str = "unknown"  # the commit that started it (tune/sweep/code_version.py); "unknown" for older sweeps
    trials: list[TrialRecord] = field(default_factory=list)

    def tune_storage(self) -> str:
        """Where Tune and Train keep this sweep's trials: --storage as given, else the sweep folder's own tune/
        wherever the folder is now."""
        return self.storage or str(self.output / TUNE_STORAGE)

    def model_status(self, model: str) -> ModelStatus:
        return self.status.get(model) or ModelStatus()

    def to_json(self) -> Json:
        record = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("output", "trials")}
        record["status"] = {model: dataclasses.asdict(s) for model, s in self.status.items()}
        record["prices"] = self.prices.to_json() if self.prices else {}
        return record

    def save(self) -> None:
        write_atomically(self.output / SWEEP_FILE, self.to_json())
        write_atomically(self.output / TRIALS_FILE, [t.to_json() for t in self.trials])

    @classmethod
    def from_json(cls, folder: Path, record: Json, trials: list[Json]) -> Sweep:
        """A sweep.json of this or an earlier version (tune/sweep/upgrade.py); raises ValueError when it is not a
        sweep record."""
        known = {k: v for k, v in upgrade_sweep(record, folder, cls).items() if k not in ("output", "trials", "status")}
        known["prices"] = Prices.from_json(known.get("prices", {}))
        status = {m: ModelStatus.from_json(s) for m, s in (record.get("status") or {}).items()}
        return cls(output=folder, status=status, trials=[TrialRecord.from_json(t) for t in trials], **known)

    @classmethod
    def load(cls, folder: Path, what: str) -> Sweep:
        """The sweep stored in FOLDER; a missing, unreadable or foreign sweep.json is a UsageError naming WHAT."""
        path = Path(folder) / SWEEP_FILE
        try:
            record = json.loads(path.read_text())
            return cls.from_json(Path(folder), record, trial_records(Path(folder) / TRIALS_FILE, what))
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{what}: cannot read {path} ({exc})") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"{what}: {path} is not valid JSON ({exc})") from None
        except (TypeError, ValueError) as exc:  # a field of the wrong kind: not a sweep.json this project wrote
            raise UsageError(f"{what}: {path} is not a sweep record ({exc})") from None


def trial_records(path: Path, what: str) -> list[Json]:
    """The entries of trials.json at PATH ([] when there is none). A torn one is never trusted: a resume (WHAT
    "--resume") moves it aside and rebuilds the trials from Tune's own results; a report leaves them out."""
    why = why_torn(path, read_trials)
    if why is None:
        return read_trials(path) if path.is_file() else []
    if what == "--resume":
        set_aside(path, why)
    else:
        left_out(path, why)
    return []


def read_trials(path: Path) -> list[Json]:
    """trials.json's entries; ValueError when it is not a list of trial records."""
    entries = json.loads(path.read_text())
    if not isinstance(entries, list):
        raise ValueError("not a list of trials")
    for entry in entries:
        TrialRecord.from_json(entry)
    return entries
