"""The sweep request: what `python -m jobs.sweep` was asked for, as declared types. The command builds it from its
flags (jobs/sweep.py); nothing below jobs/ sees an argparse object.

A flag that defines the sweep is None when it was not given, so that a resume can tell a flag given (which must
agree with the recorded sweep) from a default (tune/sweep/checks.py `check_resume`); `with_defaults()` fills them
for a new sweep.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

# The defaults of the flags that define a sweep, filled for a new sweep (a resume takes the recorded ones).
DEFAULTS: dict[str, str | int] = {"preset": "quick", "search": "random", "search_seed": 0}


@dataclass(frozen=True)
class SweepRequest:
    preset: str | None = None  # smoke | quick | full
    models: str | None = None  # comma-separated, as given; None: every architecture
    samples: int | None = None  # trials per architecture
    seeds: int | None = None  # seeds of the final retrains
    search: str | None = None  # random | grid | optuna
    search_seed: int | None = None
    output: str = "results"  # each sweep gets OUTPUT/<name>/
    name: str | None = None
    storage: str | None = None  # a folder or a URI (s3://...) for Tune's trials
    address: str | None = None  # a Ray cluster to join
    resume: str | None = None  # the folder to continue; "" for OUTPUT/latest; None: not a resume
    resume_or_start: bool = False
    overrides: tuple[str, ...] = ()  # --set KEY=VALUE, in order
    space: str | None = None  # a JSON file of search spaces
    workers: int = 1  # Ray Train workers per trial
    gpu: Literal["auto", "on", "off"] = "auto"
    data_dir: str | None = None
    verbose: bool = False
    price: str | None = None  # cpu_hour=USD,gpu_hour=USD
    keep_trial_checkpoints: bool = False
    objective: str | None = None  # accuracy, or accuracy,COST (tune/sweep/objectives.py)
    budget: str | None = None  # COST=VALUE: the retrained configuration is the most accurate within it

    @classmethod
    def from_flags(cls, flags: dict[str, object]) -> SweepRequest:
        """From the command's parsed flags (`vars(namespace)`): `--set` given no times is no override."""
        return cls(**{**flags, "overrides": tuple(flags.get("overrides") or ())})

    def with_defaults(self) -> SweepRequest:
        """This request with DEFAULTS where a flag that defines the sweep was not given."""
        return dataclasses.replace(self, **{key: value for key, value in DEFAULTS.items()
                                            if getattr(self, key) is None})
