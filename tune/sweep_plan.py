"""A sweep's start: a new one planned from its flags and given its own folder, or a recorded one resumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tune.presets import SWEEPS
from tune.sweep_checks import check_resume
from tune.sweep_folder import check_writable, claim, find_sweep, point_latest
from tune.sweep_record import Sweep


def resume_sweep(args: Any) -> Sweep:
    """The sweep --resume names (its folder, OUTPUT/NAME with --name, else OUTPUT/latest), checked against ARGS."""
    where = Path(args.resume) if args.resume else Path(args.output) / args.name if args.name else Path(args.output)
    sweep = Sweep.load(find_sweep(where, "--resume"), "--resume")
    check_resume(args, sweep)
    check_writable(sweep.output, "--resume")
    print(f"resuming sweep {sweep.name} in {sweep.output}", flush=True)
    return sweep


def plan_sweep(args: Any, names: list[str], spaces: dict[str, dict]) -> Sweep:
    """A new sweep, not yet given a folder: every check that can fail has passed before it gets one."""
    plan = SWEEPS[args.preset]
    seeds = args.seeds or plan["seeds"]
    samples = args.samples or (1 if args.search == "grid" else plan["samples"])
    return Sweep(output=Path(args.output), models=names, name=args.name or "", storage=args.storage or "",
                 preset=args.preset, search=args.search, samples=samples, seeds=seeds, overrides=list(args.overrides),
                 spaces=spaces, search_seed=args.search_seed)


def start_in_own_folder(sweep: Sweep, output: Path, name: str | None) -> None:
    """Claim OUTPUT/<name>/ for this sweep and point OUTPUT/latest at it; no other sweep's file is touched."""
    sweep.output = claim(output, name, sweep.preset)
    sweep.name = sweep.output.name
    sweep.storage = sweep.storage or str(sweep.output / "tune")
    sweep.save()
    point_latest(output, sweep.output)
    print(f"sweep {sweep.name}: everything it writes goes to {sweep.output}", flush=True)
