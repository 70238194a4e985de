"""`jobs.train --mlflow`: one finished run's folder (result.json, checkpoint, ONNX model) as one MLflow run."""

from __future__ import annotations

from pathlib import Path

from jobs.engine.train.progress import say
from tune.track.results import log_result_folder
from tune.track.tracker import Tracker


def log_run(tracker: Tracker, folder: Path) -> bool:
    """FOLDER's run as a new run of the tracker's experiment; False when the tracker failed (said once)."""
    def log() -> str:
        client = tracker.client()
        run = client.create_run(tracker.experiment_id(), run_name=folder.name,
                                tags={"archsweep.kind": "run", "archsweep.folder": str(folder)})
        result = log_result_folder(tracker, run.info.run_id, folder)
        client.set_tag(run.info.run_id, "archsweep.model", result.model)
        client.set_terminated(run.info.run_id)
        return run.info.run_id

    run_id = tracker.attempt("the run", log)
    if run_id is not None:
        say(f"mlflow: {folder.name} logged to {tracker.uri}, experiment {tracker.experiment!r}, run {run_id}")
    return run_id is not None
