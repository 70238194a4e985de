"""A sweep's records as runs: each trials.json entry and each retrain that has no whole run yet, the parent's own
figures and files, and its report once the command has written it. What the live sweep logged is kept as it is."""

from __future__ import annotations

from tune.sweep.folder import COMPARISON_FILES, REPORT_FILE, SWEEP_FILE, TRIALS_FILE, seed_folder, seed_results
from tune.sweep.record import Sweep
from tune.track.results import log_result_folder
from tune.track.runs import SweepRuns, log_batch, numbers
from tune.track.trials import log_trial_record


def retrain_key(model: str, seed: int) -> str:
    return f"retrain/{model}/seed{seed}"


def seeds_of(sweep: Sweep, model: str) -> list[int]:
    """The seeds of MODEL with a whole result.json, in order."""
    return [int(path.parent.name.removeprefix("seed")) for path in seed_results(sweep.output, model)]


def log_retrain(runs: SweepRuns, sweep: Sweep, model: str, seed: int) -> None:
    """MODEL's retrain with SEED as a nested run, unless a whole one is there; ended only once all of it is."""
    runs.parent(sweep)
    key = retrain_key(model, seed)
    if runs.whole(key):
        return
    run_id = runs.child(key, f"{model} seed {seed}",
                        {"archsweep.kind": "retrain", "archsweep.model": model, "archsweep.seed": str(seed)})
    log_result_folder(runs.tracker, run_id, seed_folder(sweep.output, model, seed))
    runs.ended(key)


def log_records(runs: SweepRuns, sweep: Sweep) -> None:
    """Every trial and retrain of SWEEP not yet whole in the tracker, and the parent's figures and records."""
    parent = runs.parent(sweep)
    for record in sweep.trials:
        log_trial_record(runs, record)
    for model in sweep.models:
        for seed in seeds_of(sweep, model):
            log_retrain(runs, sweep, model, seed)
    statuses = [s.status for s in sweep.status.values()]
    figures = {"wall_time_s": sweep.wall_time_s, "cluster_busy": sweep.cluster_busy, "trials": len(sweep.trials),
               "models_ok": statuses.count("ok"), "models_failed": statuses.count("failed")}
    log_batch(runs.tracker, parent, [(k, v, 0) for k, v in numbers(figures).items()])
    for name in (SWEEP_FILE, TRIALS_FILE):  # the records themselves, as they are at the end
        runs.tracker.client().log_artifact(parent, str(sweep.output / name))


def log_report(runs: SweepRuns, sweep: Sweep) -> None:
    """report.html and comparison.* on the parent run (an artifact logged again replaces its older copy), which
    then ends: FINISHED when an architecture came through, else FAILED."""
    parent = runs.parent(sweep)
    for name in (REPORT_FILE, *COMPARISON_FILES.values()):
        if (sweep.output / name).is_file():
            runs.tracker.client().log_artifact(parent, str(sweep.output / name))
    ok = any(s.status == "ok" for s in sweep.status.values())
    runs.tracker.client().set_terminated(parent, "FINISHED" if ok else "FAILED")
