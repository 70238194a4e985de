"""The test predictions a final retrain kept beside its result.json (jobs/engine/measure/final_evaluation.py writes
`predictions.npz`), read back for the report's statistics, pictures and calibration.

A sweep from before predictions.npz existed still has `test_predictions` and `test_labels` in each result.json:
those give the per-image correctness (no probabilities, no images).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jobs.engine.measure.final_evaluation import PREDICTIONS_FILE
from jobs.engine.run_result import RunResult
from tune.sweep.folder import seed_results

DETECTION_KEYS = ("canvases", "true_boxes", "true_labels", "true_counts", "pred_boxes", "pred_labels", "pred_scores",
                  "pred_counts")


@dataclass
class Predictions:
    """One final run's test predictions: labels and predictions int [N]; probabilities float64 [N, 10] (rows
    renormalised after float16 storage) for a classifier; the images it got wrong, most confident first."""

    labels: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray | None = None
    error_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    error_images: np.ndarray = field(default_factory=lambda: np.zeros((0, 28, 28), dtype=np.uint8))
    detection: dict[str, np.ndarray] | None = None  # DETECTION_KEYS, for the detector

    @property
    def correct(self) -> np.ndarray:
        return self.predictions == self.labels

    @property
    def test_set(self) -> tuple[int, bytes]:
        """Which test images: their number and labels (the first N of the test set, N = the run's test_limit)."""
        return len(self.labels), self.labels.astype(np.int16).tobytes()


def read_predictions(run_dir: Path) -> Predictions | None:
    """RUN_DIR/predictions.npz; None when the run kept none. Raises ValueError when the file is unreadable or
    lacks labels and predictions of one length."""
    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path} is not readable ({exc})") from None
    labels, predictions = arrays.get("labels"), arrays.get("predictions")
    if labels is None or predictions is None or labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(f"{path} has no labels and predictions of one length")
    probabilities = arrays.get("probabilities")
    if probabilities is not None:
        probabilities = probabilities.astype(np.float64)
        probabilities /= np.maximum(probabilities.sum(axis=1, keepdims=True), 1e-12)
    detection = {k: arrays[k] for k in DETECTION_KEYS if k in arrays} if "canvases" in arrays else None
    found = Predictions(labels.astype(np.int64), predictions.astype(np.int64), probabilities, detection=detection)
    if "error_indices" in arrays and "error_images" in arrays:
        found.error_indices, found.error_images = arrays["error_indices"], arrays["error_images"]
    return found


def from_result(result: RunResult) -> Predictions | None:
    """The predictions an older result.json recorded itself; None without them."""
    if not result.test_predictions or not result.test_labels or \
            len(result.test_predictions) != len(result.test_labels):
        return None
    return Predictions(np.asarray(result.test_labels, dtype=np.int64),
                       np.asarray(result.test_predictions, dtype=np.int64))


@dataclass
class SweepPredictions:
    """Per model, {seed: Predictions} of its final runs, and why a model has none (a note per model)."""

    runs: dict[str, dict[int, Predictions]]
    notes: dict[str, str]

    def seed0(self, model: str) -> tuple[int, Predictions] | None:
        seeds = self.runs.get(model) or {}
        return next(iter(seeds.items()), None)


def sweep_predictions(output: Path, finals: dict[str, list[RunResult]]) -> SweepPredictions:
    """Every final run's predictions: predictions.npz where the run kept one, else its result.json's. A seed whose
    test images differ from its model's first seed's is left out (a model is compared on one test set)."""
    runs: dict[str, dict[int, Predictions]] = {}
    notes: dict[str, str] = {}
    for model, results in finals.items():
        paths = seed_results(output, model)
        seeds: dict[int, Predictions] = {}
        for path, result in zip(paths, results, strict=False):
            seed = int(re.fullmatch(r"seed(\d+)", path.parent.name).group(1))  # type: ignore[union-attr]
            try:
                found = read_predictions(path.parent) or from_result(result)
            except ValueError as exc:
                notes[model] = str(exc)
                found = from_result(result)
            if found is None:
                continue
            if seeds and found.test_set != next(iter(seeds.values())).test_set:
                notes[model] = f"seed {seed} was tested on other images than seed {next(iter(seeds))}: left out"
                continue
            seeds[seed] = found
        if seeds:
            runs[model] = seeds
        elif results:
            notes.setdefault(model, "its result.json has no per-image test predictions")
    return SweepPredictions(runs, notes)


def correctness(seeds: dict[int, Predictions]) -> dict[int, np.ndarray]:
    return {seed: p.correct for seed, p in seeds.items()}
