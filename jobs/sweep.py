"""`python -m jobs.sweep`: sweep every architecture with Ray Tune over Ray Train, retrain the best, compare.

For each architecture: a Tune search (ASHA on validation accuracy), then its best configuration retrained on
train+validation with K seeds and evaluated on the 10,000 test images, then the comparison report. State is
written after every step, so `--resume` continues a killed sweep without redoing finished work.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import models
from jobs import config as run_config
from jobs.errors import ArgumentParser, UsageError, run_cli
from jobs.loopback import prefer_loopback
from tune.presets import GPU_PER_TRIAL_WORKER, SWEEPS
from tune.spaces import SEARCHES, check_space

SWEEP_FILE, TRIALS_FILE = "sweep.json", "trials.json"


def parse_args(argv: list[str] | None) -> Any:
    parser = ArgumentParser(prog="python -m jobs.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", help="smoke | quick | full (default: quick)")
    parser.add_argument("--models", default=",".join(models.model_names()), help="comma-separated (default: all)")
    parser.add_argument("--samples", type=int, help="trials per architecture (default: the preset's)")
    parser.add_argument("--seeds", type=int, help="seeds of the final retrain (default: 1, or 3 on full)")
    parser.add_argument("--search", default="random", help="random | grid | optuna (default: random)")
    parser.add_argument("--search-seed", type=int, default=0,
                        help="seed of the search's sampling: the same seed draws the same trials (default: 0)")
    parser.add_argument("--output", default="results", help="where comparison.* and report.html go")
    parser.add_argument("--storage", help="Tune/Train storage: folder or URI such as s3://... (default: OUTPUT/tune)")
    parser.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--resume", action="store_true", help="continue the sweep recorded in OUTPUT")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key for every architecture that has it; repeatable")
    parser.add_argument("--space", help="JSON file: {model: {key: {kind: args}}} replacing tune/spaces.py entries")
    parser.add_argument("--workers", type=int, default=1, help="Ray Train workers per trial (default: 1)")
    parser.add_argument("--gpu", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $MNIST_DATA_DIR)")
    parser.add_argument("--verbose", action="store_true", help="show Ray's own logs")
    return parser.parse_args(argv)


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
    trials: list[dict[str, Any]] = field(default_factory=list)

    def save(self) -> None:
        self.output.mkdir(parents=True, exist_ok=True)
        record = {k: v for k, v in self.__dict__.items() if k not in ("output", "trials")}
        (self.output / SWEEP_FILE).write_text(json.dumps(record, indent=1, default=str))
        (self.output / TRIALS_FILE).write_text(json.dumps(self.trials, indent=1, default=str))

    @classmethod
    def load(cls, output: Path) -> Sweep:
        path = output / SWEEP_FILE
        if not path.is_file():
            raise UsageError(f"--resume: no earlier sweep in {output} ({SWEEP_FILE} not found)")
        try:
            record = json.loads(path.read_text())
            trials_path = output / TRIALS_FILE
            trials = json.loads(trials_path.read_text()) if trials_path.is_file() else []
        except json.JSONDecodeError as exc:
            raise UsageError(f"--resume: {path} is not valid JSON ({exc})") from None
        return cls(output=output, trials=trials, **record)


def configs_for(model: str, preset: str, overrides: list[str]) -> dict[str, Any]:
    """The model's preset config with the sweep's --set keys that this model has."""
    base = run_config.preset_config(model, preset)
    return run_config.check(model, run_config.apply_overrides(base, [p for p in overrides if p.split("=")[0] in base]))


def validate(args: Any) -> tuple[list[str], dict[str, dict[str, Any]]]:
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in models.model_names()]
    if unknown or not names:
        raise UsageError(f"--models: unknown model {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(models.model_names())}")
    if args.search not in SEARCHES:
        raise UsageError(f"--search {args.search!r}: choose from {', '.join(SEARCHES)}")
    if args.preset not in SWEEPS:
        raise UsageError(f"unknown preset {args.preset!r}; choose from {', '.join(SWEEPS)}")
    for flag in ("samples", "seeds", "workers"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise UsageError(f"--{flag} must be >= 1")
    for pair in args.overrides:
        key = pair.partition("=")[0].strip()
        if "=" not in pair or not key:
            raise UsageError(f"--set {pair!r}: expected key=value")
        if not any(key in run_config.preset_config(m, args.preset) for m in names):
            raise UsageError(f"--set {key}: no selected model or the loop has this key")
    return names, {m: configs_for(m, args.preset, args.overrides) for m in names}


def read_space_file(path: str | None, names: list[str]) -> dict[str, dict]:
    if not path:
        return {}
    try:
        spaces = json.loads(Path(path).read_text())
        for model, space in spaces.items():
            if model not in names:
                raise ValueError(f"{model!r} is not among --models")
            check_space(space, model)
    except (OSError, ValueError, AttributeError) as exc:
        raise UsageError(f"--space {path}: {exc}") from None
    return spaces


def new_or_resumed(args: Any, names: list[str]) -> Sweep:
    output = Path(args.output).resolve()
    if args.resume:
        sweep = Sweep.load(output)
        print(f"resuming sweep {sweep.name} from {output}", flush=True)
        return sweep
    plan = SWEEPS[args.preset]
    seeds = args.seeds or plan["seeds"]
    samples = args.samples or (1 if args.search == "grid" else plan["samples"])
    name = f"sweep-{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    storage = args.storage or str(output / "tune")
    return Sweep(output, name, storage, args.preset, names, args.search, samples, seeds, list(args.overrides),
                 read_space_file(args.space, names), args.search_seed)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names, configs = validate(args)
    sweep = new_or_resumed(args, names)
    if args.resume:
        names = sweep.models
        configs = {m: configs_for(m, sweep.preset, sweep.overrides) for m in names}
    from jobs.data import load_mnist

    data = load_mnist(args.data_dir)
    prefer_loopback(args.address)
    from jobs.cluster import connect

    connect(args.address, args.verbose)
    from jobs.sweep_steps import run_sweep

    run_sweep(sweep, configs, data, args.workers, args.gpu, GPU_PER_TRIAL_WORKER)
    return 0 if any(s.get("status") == "ok" for s in sweep.status.values()) else 1


if __name__ == "__main__":
    run_cli(main)
