"""Everything a user can get wrong about a sweep, checked before Ray starts: flags, space files, resumes.

Each problem is a UsageError: one `error:` line and exit code 2, before any cluster work.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import models
from jobs.engine import config as run_config
from jobs.engine.errors import UsageError
from models.registry import Config
from tune.sweep.objectives import parse_objective
from tune.sweep.presets import SWEEPS
from tune.sweep.request import SweepRequest

if TYPE_CHECKING:
    from tune.sweep.record import Sweep
from tune.sweep.spaces import SEARCHES, candidate_values, check_space

# What a sweep is when a flag is left out. --resume compares only the flags given with what sweep.json recorded.
# A space file is checked value by value, and as every combination of those values while there are few enough.
MAX_COMBINATIONS = 4096


def model_list(text: str | None) -> list[str]:
    return models.model_names() if text is None else [m.strip() for m in text.split(",") if m.strip()]


def configs_for(model: str, preset: str, overrides: list[str]) -> Config:
    """The model's preset config with the sweep's --set keys that this model has."""
    base = run_config.preset_config(model, preset)
    return run_config.check(model, run_config.apply_overrides(base, [p for p in overrides if p.split("=")[0] in base]))


def validate(request: SweepRequest) -> tuple[SweepRequest, list[str], dict[str, Config]]:
    """A new sweep's REQUEST with the defaults of the flags left out, its selected models and their base configs.
    Raises UsageError, naming the flag, for anything the sweep could not run with."""
    objective = parse_objective(request.objective, request.budget)
    if objective.cost and request.search not in (None, "optuna"):
        raise UsageError(f"--objective {objective.text}: two objectives need Optuna's multi-objective sampling; "
                         "use --search optuna (the default with a cost), or --objective accuracy")
    if objective.cost and request.search is None:
        request = dataclasses.replace(request, search="optuna")
    request = request.with_defaults()
    names = model_list(request.models)
    unknown = [m for m in names if m not in models.model_names()]
    if unknown or not names:
        raise UsageError(f"--models: unknown model {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(models.model_names())}")
    if request.search not in SEARCHES:
        raise UsageError(f"--search {request.search!r}: choose from {', '.join(SEARCHES)}")
    if request.preset not in SWEEPS:
        raise UsageError(f"unknown preset {request.preset!r}; choose from {', '.join(SWEEPS)}")
    for flag in ("samples", "seeds", "workers"):
        if getattr(request, flag) is not None and getattr(request, flag) < 1:
            raise UsageError(f"--{flag} must be >= 1")
    for pair in request.overrides:
        key = pair.partition("=")[0].strip()
        if "=" not in pair or not key:
            raise UsageError(f"--set {pair!r}: expected key=value")
        if not any(key in run_config.preset_config(m, request.preset) for m in names):
            raise UsageError(f"--set {key}: no selected model or the loop has this key")
    return request, names, {m: configs_for(m, request.preset, list(request.overrides)) for m in names}


def read_space_file(path: str | None, configs: dict[str, Config]) -> dict[str, dict]:
    """The spaces of a --space file, each key one its model or the loop has, each value one the model accepts."""
    if not path:
        return {}
    try:
        spaces = json.loads(Path(path).read_text())
        if not isinstance(spaces, dict):
            raise ValueError("expected {model: {key: {kind: args}}}")
        for model, space in spaces.items():
            if model not in configs:
                raise ValueError(f"{model!r} is not among --models")
            check_space(space, model)
            check_space_values(model, space, configs[model])
    except (OSError, ValueError, AttributeError) as exc:  # UsageError is a ValueError
        raise UsageError(f"--space {path}: {exc}") from None
    return spaces


def check_space_values(model: str, space: dict[str, dict], base: Config) -> None:
    """Every choice and both ends of every range through the model's own validation, as a trial would see it."""
    known = set(base) - {run_config.GPU_KEY}
    unknown = sorted(set(space) - known)
    if unknown:
        raise UsageError(f"{model}: {', '.join(unknown)}: not a key of {model} or the loop "
                         f"(known: {', '.join(sorted(known))})")
    values = {key: candidate_values(entry) for key, entry in space.items()}
    for key, candidates in values.items():
        for value in candidates:
            try_config(model, base, {key: value})
    if 1 < len(values) and math.prod(map(len, values.values())) <= MAX_COMBINATIONS:
        for combination in itertools.product(*values.values()):
            try_config(model, base, dict(zip(values, combination, strict=True)))


def try_config(model: str, base: Config, sampled: Config) -> None:
    # The same path as a trial's config (tune/sweep/tuner.py trial_config): typed values through the declared config.
    try:
        run_config.check(model, run_config.with_values(base, sampled))
    except UsageError as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in sampled.items())
        raise UsageError(f"{shown}: {str(exc).removeprefix('--set ')}") from None


def check_resume(request: SweepRequest, recorded: Sweep, resume_flag: str = "--resume") -> None:
    """A flag given with --resume (or --resume-or-start, RESUME_FLAG) must say what the recorded sweep says; naming
    the recorded values otherwise."""
    given = {
        "preset": request.preset,
        "models": None if request.models is None else model_list(request.models),
        "search": request.search,
        "samples": request.samples,
        "seeds": request.seeds,
        "search_seed": request.search_seed,
        "overrides": list(request.overrides) or None,
        "storage": request.storage,
        "objective": None if request.objective is None else parse_objective(request.objective, None).text,
        "budget": None if request.budget is None else parse_objective(request.objective or recorded.objective,
                                                                      request.budget).budget,
    }
    if request.space:
        given["spaces"] = read_space_file(request.space, {m: run_config.preset_config(m, recorded.preset)
                                                      for m in recorded.models})
    clashes = [key for key, value in given.items() if value is not None and value != getattr(recorded, key)]
    if clashes:
        said = ", ".join(f"{flag(key)} {as_text(given[key])}" for key in clashes)
        record = " ".join(f"{flag(key)} {as_text(getattr(recorded, key))}" for key in (
            "preset", "models", "search", "samples", "seeds", "search_seed", "overrides"))
        raise UsageError(f"{resume_flag}: {recorded.output} was recorded with {record}; {said} contradicts it (leave "
                         f"the flag out to continue that sweep, or start a new sweep without {resume_flag})")


def flag(key: str) -> str:
    return {"overrides": "--set", "spaces": "--space"}.get(key, f"--{key.replace('_', '-')}")


def as_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) if value else "(none)"
    return json.dumps(value) if isinstance(value, dict) else str(value)
