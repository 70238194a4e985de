"""A sweep's start: a new one planned from its flags and given its own folder, or a recorded one resumed."""

from __future__ import annotations

import json
from pathlib import Path

from jobs.engine.atomic import JsonValue
from jobs.engine.errors import UsageError
from models.registry import Config
from tune.sweep.checks import check_resume
from tune.sweep.code_version import code_version
from tune.sweep.folder import SWEEP_FILE, check_name, check_writable, claim, find_sweep, point_latest
from tune.sweep.objectives import parse_objective
from tune.sweep.presets import SWEEPS
from tune.sweep.record import Sweep
from tune.sweep.request import SweepRequest
from tune.sweep.spaces import space_of


def resumes(request: SweepRequest) -> bool:
    """Whether this run continues a recorded sweep: --resume, or --resume-or-start (with --name) where OUTPUT/NAME
    holds one. A job that a cluster retries after it lost its head runs the same command again: the first run
    starts the named sweep, every later one continues it. UsageError for --resume-or-start without --name, or with
    --resume."""
    if not request.resume_or_start:
        return request.resume is not None
    if request.resume is not None:
        raise UsageError("--resume-or-start and --resume: give one (--resume-or-start continues OUTPUT/NAME if it "
                         "holds a sweep, else starts it)")
    if not request.name:
        raise UsageError("--resume-or-start needs --name NAME: the sweep folder OUTPUT/NAME that a retried run "
                         "continues")
    folder = Path(request.output) / check_name(request.name)
    if (folder / SWEEP_FILE).is_file():
        return True
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()  # claimed by a run that was killed before it wrote anything: nothing in it to keep
    elif folder.exists():
        raise UsageError(f"--resume-or-start: {folder} exists but holds no {SWEEP_FILE}, so it is no sweep to "
                         "continue and not an empty folder to start one in; move it aside or choose another --name")
    return False


def resume_sweep(request: SweepRequest) -> Sweep:
    """The sweep --resume names (its folder, OUTPUT/NAME with --name, else OUTPUT/latest), checked against REQUEST."""
    flag = "--resume-or-start" if request.resume_or_start else "--resume"
    output = Path(request.output)
    where = Path(request.resume) if request.resume else output / request.name if request.name else output
    sweep = Sweep.load(find_sweep(where, flag), flag)
    check_resume(request, sweep, flag)
    check_writable(sweep.output, flag)
    print(f"resuming sweep {sweep.name} in {sweep.output}", flush=True)
    return sweep


def effective_plan(sweep: Sweep, configs: dict[str, Config]) -> dict[str, JsonValue]:
    """What the code makes of this sweep: each model's searched space (tune/sweep/spaces.py or --space, without the keys
    the preset keeps at their defaults), its base config (run presets, --set) and the sweep preset, as JSON values.
    sweep.json records it, so that a resume after a `git pull` that changed any of it is refused."""
    plan = SWEEPS[sweep.preset]
    spaces = {m: {k: v for k, v in space_of(m, sweep.spaces).items() if k not in plan["keep_default"].get(m, [])}
              for m in sweep.models}
    return json.loads(json.dumps({"spaces": spaces, "configs": configs, "sweep_preset": plan}))


def check_plan_unchanged(sweep: Sweep, configs: dict[str, Config]) -> None:
    """A resume continues the search it started: a changed space or preset is a UsageError naming the change."""
    if not sweep.plan:
        return  # recorded by an earlier version, which did not keep its plan: nothing to compare
    changes = differences(sweep.plan, effective_plan(sweep, configs))
    if changes:
        shown = "; ".join(changes[:4]) + (f"; and {len(changes) - 4} more" if len(changes) > 4 else "")
        raise UsageError(f"--resume: {sweep.output} was started with other search spaces or presets than the code "
                         f"has now (tune/sweep/spaces.py, tune/sweep/presets.py or jobs/engine/presets.py changed "
                         f"since): {shown}; "
                         "resume with the code it started with, or start a new sweep")


def differences(recorded: JsonValue, now: JsonValue, where: str = "") -> list[str]:
    """`path: recorded X, now Y` for each leaf where two JSON values differ."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        return [line for key in sorted(set(recorded) | set(now), key=str)
                for line in differences(recorded.get(key, "(absent)"), now.get(key, "(absent)"),
                                        f"{where}.{key}" if where else str(key))]
    if recorded == now:
        return []
    return [f"{where}: recorded {json.dumps(recorded)}, now {json.dumps(now)}"]


def plan_sweep(request: SweepRequest, names: list[str], spaces: dict[str, dict]) -> Sweep:
    """A new sweep, not yet given a folder: every check that can fail has passed before it gets one."""
    plan = SWEEPS[request.preset]
    objective = parse_objective(request.objective, request.budget)
    seeds = request.seeds or plan["seeds"]
    samples = request.samples or (1 if request.search == "grid" else plan["samples"])
    return Sweep(output=Path(request.output), models=names, name=request.name or "", storage=request.storage or "",
                 preset=request.preset, search=request.search, samples=samples, seeds=seeds,
                 overrides=list(request.overrides), spaces=spaces, search_seed=request.search_seed,
                 objective=objective.text, budget=objective.budget, code=code_version())


def start_in_own_folder(sweep: Sweep, output: Path, name: str | None) -> None:
    """Claim OUTPUT/<name>/ for this sweep and point OUTPUT/latest at it; no other sweep's file is touched."""
    sweep.output = claim(output, name, sweep.preset)
    sweep.name = sweep.output.name
    # No --storage: "" is recorded, meaning the sweep folder's own tune/, so that a moved or copied sweep folder
    # resumes where it now is (Sweep.tune_storage).
    sweep.save()
    point_latest(output, sweep.output)
    print(f"sweep {sweep.name}: everything it writes goes to {sweep.output}", flush=True)
