"""A finished run's folder (its result.json, checkpoint and ONNX model) on one MLflow run: a retrain of the sweep,
or a single `jobs.train` run. Every numeric figure of result.json is a metric: its top-level ones, those of its
records (robustness.blur, serving.latency_ms_p95, ...), one per class, and each epoch's at step = the epoch."""

from __future__ import annotations

from pathlib import Path

from jobs.engine.measure.final_evaluation import ONNX_FILE
from jobs.engine.run_result import RESULT_FILE, RunResult
from tune.sweep.upgrade import read_result
from tune.track.onnx_model import log_onnx
from tune.track.runs import log_batch, numbers
from tune.track.tracker import Tracker

# Numbers, but not figures: one per test image or cell, the run's parameters and where it ran.
NOT_FIGURES = ("test_predictions", "test_labels", "confusion_matrix", "config", "env")
HISTORY_PREFIX = "epoch."  # a retrain's per-epoch figures, apart from its final ones of the same name


def figures(result: RunResult) -> list[tuple[str, float, int]]:
    """(metric, value, step) of every numeric figure of RESULT; step 0 but for the per-epoch history."""
    out: list[tuple[str, float, int]] = []
    for key, value in result.to_json().items():
        if key in NOT_FIGURES:
            continue
        if key == "history":
            out += [(k, v, int(step)) for step, check in enumerate(value, start=1)
                    for k, v in numbers(dict(check), HISTORY_PREFIX).items()]
        elif isinstance(value, dict):
            out += [(k, v, 0) for k, v in numbers(value, f"{key}.").items()]
        elif isinstance(value, list):
            out += [(k, v, 0) for k, v in numbers({str(i): v for i, v in enumerate(value)}, f"{key}.").items()]
        else:
            out += [(k, v, 0) for k, v in numbers({key: value}).items()]
    return out


def checkpoint_of(folder: Path) -> Path | None:
    """A retrain's checkpoint/, else the newest checkpoint folder Ray Train left (a jobs.train run's)."""
    found = sorted(p for p in folder.glob("checkpoint*") if p.is_dir())
    return folder / "checkpoint" if (folder / "checkpoint").is_dir() else (found[-1] if found else None)


def log_result_folder(tracker: Tracker, run_id: str, folder: Path) -> RunResult:
    """FOLDER's result.json figures, its config as parameters, its checkpoint and its ONNX model on RUN_ID."""
    result = read_result(folder / RESULT_FILE)
    client, model_id = tracker.client(), None
    # The model before the figures: MLflow 3's log_model copies the run's metrics of its step onto the model by
    # asking for each metric's history (one request per metric, ~80 here); logged first it finds none, and the
    # figures name the model themselves (model_id), one request for all.
    if (folder / ONNX_FILE).is_file():  # a deployable export; model.not-deployable.onnx is no model to serve
        model_uri, model_id = log_onnx(tracker, run_id, folder / ONNX_FILE)
        client.set_tag(run_id, "archsweep.model_uri", model_uri)
    log_batch(tracker, run_id, figures(result), params=dict(result.config), model_id=model_id)
    client.log_artifact(run_id, str(folder / RESULT_FILE))
    checkpoint = checkpoint_of(folder)
    if checkpoint is not None:
        client.log_artifacts(run_id, str(checkpoint), "checkpoint")
    return result
