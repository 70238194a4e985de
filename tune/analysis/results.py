"""A sweep's stored results, typed, loaded once: the sweep record (with its trials), each architecture's retrains
(result.json per seed) and the prices its costs are counted at. What analysis/ and report/ read a sweep folder
through."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from jobs.engine.errors import UsageError
from jobs.engine.run_result import RunResult
from tune.sweep.folder import SWEEP_FILE, seed_results, torn_seed_results
from tune.sweep.prices import DEFAULT_PRICES, Prices
from tune.sweep.record import ModelStatus, Sweep
from tune.sweep.torn_records import left_out
from tune.sweep.trials import TrialRecord


@dataclass
class SweepResults:
    """Everything a sweep folder stores, typed: the sweep record (with its trials) and each model's retrains; and
    a report's `--price` (PRICE), which overrides the sweep's for that report without touching the record."""

    output: Path
    sweep: Sweep
    finals: dict[str, list[RunResult]] = field(default_factory=dict)  # model -> result.json per seed, in order
    price: Prices | None = None

    @property
    def prices(self) -> Prices:
        """What costs are counted at: the report's --price, else the sweep's, else the dated defaults."""
        return self.price or self.sweep.prices or DEFAULT_PRICES

    @property
    def models(self) -> list[str]:
        return list(self.sweep.models)

    @property
    def trials(self) -> list[TrialRecord]:
        return self.sweep.trials

    def status(self, model: str) -> ModelStatus:
        return self.sweep.model_status(model)


def load_results(output: Path, price: Prices | None = None) -> SweepResults:
    """Everything the sweep stored under OUTPUT, its costs counted at PRICE when given (a report's --price); a
    missing or broken sweep.json is the user's to fix."""
    output = Path(output)
    if not output.is_dir():
        raise UsageError(f"results folder {output} does not exist")
    if not (output / SWEEP_FILE).is_file():
        raise UsageError(f"{output} has no {SWEEP_FILE}; point at a sweep's output folder (make sweep writes one)")
    sweep = Sweep.load(output, "jobs.report")
    for model in sweep.models:
        for path, why in torn_seed_results(output, model):
            left_out(path, why)
    finals = {model: [_read_result(path) for path in seed_results(output, model)] for model in sweep.models}
    return SweepResults(output, sweep, finals, price)


def _read_result(path: Path) -> RunResult:
    try:
        return RunResult.read(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc})") from exc
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{path} is not a run result ({exc})") from exc
