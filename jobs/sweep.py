"""`python -m jobs.sweep`: sweep every architecture with Ray Tune over Ray Train, retrain the best, compare.

For each architecture: a Tune search (ASHA on validation accuracy), then its best configuration retrained on
train+validation with K seeds and evaluated on the 10,000 test images, then the comparison report. Each sweep
writes only into its own folder, OUTPUT/<name>/ (OUTPUT/latest points to the newest), and records its state
after every step, so `--resume` continues a killed sweep without redoing finished work.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobs.errors import ArgumentParser, UsageError, run_cli
from jobs.loopback import prefer_loopback
from jobs.sweep_checks import check_resume, configs_for, read_space_file, validate
from jobs.sweep_folder import SWEEP_FILE, check_name, check_writable, claim, find_sweep, point_latest
from tune.presets import GPU_PER_TRIAL_WORKER, SWEEPS

TRIALS_FILE = "trials.json"


def parse_args(argv: list[str] | None) -> Any:
    # Flags that define a sweep default to None, so that --resume can tell a flag given from a default.
    parser = ArgumentParser(prog="python -m jobs.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", help="smoke | quick | full (default: quick)")
    parser.add_argument("--models", help="comma-separated (default: all)")
    parser.add_argument("--samples", type=int, help="trials per architecture (default: the preset's)")
    parser.add_argument("--seeds", type=int, help="seeds of the final retrain (default: 1, or 3 on full)")
    parser.add_argument("--search", help="random | grid | optuna (default: random)")
    parser.add_argument("--search-seed", type=int,
                        help="seed of the search's sampling: the same seed draws the same trials (default: 0)")
    parser.add_argument("--output", default="results",
                        help="each sweep gets its own folder OUTPUT/<name>/; OUTPUT/latest is the newest")
    parser.add_argument("--name", help="the sweep's folder name (default: sweep-PRESET-DATE-TIME)")
    parser.add_argument("--storage", help="Tune/Train storage: folder or URI such as s3://... (default: the sweep's "
                                          "folder/tune)")
    parser.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--resume", nargs="?", const="", metavar="SWEEP_FOLDER",
                        help="continue a sweep whose driver died: the folder given, else OUTPUT/latest")
    parser.add_argument("--set", dest="overrides", action="append", default=None, metavar="KEY=VALUE",
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


def resumed(args: Any) -> Sweep:
    """The sweep --resume names (its folder, OUTPUT/NAME with --name, else OUTPUT/latest), checked against ARGS."""
    where = Path(args.resume) if args.resume else Path(args.output) / args.name if args.name else Path(args.output)
    sweep = Sweep.load(find_sweep(where, "--resume"))
    check_resume(args, sweep)
    check_writable(sweep.output, "--resume")
    print(f"resuming sweep {sweep.name} in {sweep.output}", flush=True)
    return sweep


def planned(args: Any, names: list[str], spaces: dict[str, dict]) -> Sweep:
    """A new sweep, not yet given a folder: every check that can fail has passed before it gets one."""
    plan = SWEEPS[args.preset]
    seeds = args.seeds or plan["seeds"]
    samples = args.samples or (1 if args.search == "grid" else plan["samples"])
    return Sweep(Path(args.output), args.name or "", args.storage or "", args.preset, names, args.search, samples,
                 seeds, list(args.overrides), spaces, args.search_seed)


def start_in_own_folder(sweep: Sweep, output: Path, name: str | None) -> None:
    """Claim OUTPUT/<name>/ for this sweep and point OUTPUT/latest at it; no other sweep's file is touched."""
    sweep.output = claim(output, name, sweep.preset)
    sweep.name = sweep.output.name
    sweep.storage = sweep.storage or str(sweep.output / "tune")
    sweep.save()
    point_latest(output, sweep.output)
    print(f"sweep {sweep.name}: everything it writes goes to {sweep.output}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.resume is not None:
        sweep = resumed(args)
        configs = {m: configs_for(m, sweep.preset, sweep.overrides) for m in sweep.models}
    else:
        names, configs = validate(args)
        sweep = planned(args, names, read_space_file(args.space, configs))
        output = check_writable(Path(args.output), "--output")
        if args.name:
            check_name(args.name)
        if args.storage and "://" not in args.storage:
            check_writable(Path(args.storage), "--storage")
    from jobs.data import load_mnist

    data = load_mnist(args.data_dir)
    address = args.address or os.environ.get("RAY_ADDRESS")
    prefer_loopback(address)
    if address:
        from jobs.cluster import check_reachable

        check_reachable(address)
    if args.resume is None:
        start_in_own_folder(sweep, output, args.name)
    from jobs.cluster import connect

    connect(args.address, args.verbose)
    from jobs.sweep_steps import run_sweep

    run_sweep(sweep, configs, data, args.workers, args.gpu, GPU_PER_TRIAL_WORKER)
    return 0 if any(s.get("status") == "ok" for s in sweep.status.values()) else 1


if __name__ == "__main__":
    run_cli(main)
