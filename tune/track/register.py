"""`--register NAME`: the sweep's winner (the architecture with the highest mean test accuracy over its seeds, as
the comparison's rows rank them, among those with a deployable ONNX model) registered as a version of NAME in the
tracker's model registry: its best seed's ONNX model. Registered once: a second report finds the version there."""

from __future__ import annotations

import statistics

from jobs.engine.measure.final_evaluation import ONNX_FILE
from jobs.engine.train.progress import say
from tune.sweep.folder import seed_folder, seed_results
from tune.sweep.record import Sweep
from tune.sweep.upgrade import read_result
from tune.track.records import retrain_key
from tune.track.runs import SweepRuns


def winner(sweep: Sweep) -> tuple[str, int, float] | None:
    """(model, seed, mean test accuracy) of the winner, None when no retrain has a deployable ONNX model."""
    rows = []
    for model in sweep.models:
        seeds = {int(p.parent.name.removeprefix("seed")): read_result(p).test_accuracy
                 for p in seed_results(sweep.output, model)}
        scored = {s: a for s, a in seeds.items() if a is not None}
        exported = [s for s in scored if (seed_folder(sweep.output, model, s) / ONNX_FILE).is_file()]
        if exported:
            best = max(exported, key=lambda s: (scored[s], -s))
            rows.append((model, best, statistics.fmean(scored.values())))
    return max(rows, key=lambda row: row[2]) if rows else None


def register_winner(runs: SweepRuns, sweep: Sweep, name: str) -> None:
    found = winner(sweep)
    if found is None:
        say(f"mlflow: --register {name}: no retrain has a deployable ONNX model; nothing registered")
        return
    model, seed, accuracy = found
    client = runs.tracker.client()
    run = client.get_run(runs.children()[retrain_key(model, seed)].run_id)
    uri = run.data.tags["archsweep.model_uri"]
    if any(v.run_id == run.info.run_id for v in client.search_model_versions(f"name = '{name}'")):
        return
    import mlflow

    mlflow.set_tracking_uri(runs.tracker.uri)
    version = mlflow.register_model(uri, name, tags={"archsweep.sweep": runs.key, "archsweep.model": model})
    say(f"mlflow: registered {model} seed {seed} (mean test accuracy {accuracy:.4f}) as {name} version "
        f"{version.version}")
