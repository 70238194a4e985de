"""What a final run measures after its test evaluation, on its own device, in its own precision and threads.

- **Serving cost** (jobs/engine/measure/serving.py): latency at batch 1 (median and 95th percentile over LATENCY_CALLS
  calls after a warm-up) and throughput at a large batch; per canvas for the detector.
- **Compute and size** (jobs/engine/measure/flops.py): forward GFLOPs per image, the run's training FLOPs estimated as
  3 × forward × images trained, the saved weights in MB.
- **A deployable model** (jobs/engine/measure/onnx_export.py): `model.onnx` beside `checkpoint.pt`, only when ONNX
  Runtime agrees with the PyTorch model on 99.9% of at least 1,000 test images (else `model.not-deployable.onnx`,
  with its agreement and every exporter's attempt in result.json's `onnx`).
- **Calibration** (jobs/engine/measure/calibration.py) from the test probabilities, and **robustness**: accuracy on
  seeded corruptions of the test images (jobs/engine/data/corruptions.py).
- **The test predictions** in `predictions.npz` (labels, predictions, probabilities, and the images the model
  got wrong, most confident first), so that the report can recompute and draw all of this without training.

Each part that fails is recorded with its reason (`final_evaluation_errors`); none fails the run.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypedDict, TypeVar

import numpy as np
import torch
from torch import nn

from jobs.engine.atomic import replacing
from jobs.engine.data.augment import prepare_batch
from jobs.engine.data.corruptions import CORRUPTIONS, corrupt
from jobs.engine.measure import flops, onnx_export, serving
from jobs.engine.measure.registry import prediction_measures
from jobs.engine.measure.serving import ServingCost
from jobs.engine.tasks import Task
from jobs.engine.tasks.detection_data import as_float

PREDICTIONS_FILE = "predictions.npz"
ONNX_FILE = "model.onnx"
UNDEPLOYABLE_ONNX_FILE = onnx_export.not_deployable(ONNX_FILE).name  # an export that does not agree, kept apart
CORRUPTION_SEED = 0  # one seed for every model: they are all scored on the very same corrupted pixels
MAX_ERROR_IMAGES = 400  # most confidently wrong test images kept per model (784 bytes each)
DETECTION_CANVASES = 6  # test canvases kept with their true and predicted boxes
T = TypeVar("T")
# Throughput is one timed span of 3 large batches after 1 warm-up batch: at batch 256 a ResNet-18 on one CPU core
# takes ~1 s a batch, and the median of many is not needed for a figure reported to 2 significant digits.
THROUGHPUT = {"throughput_calls": 3, "throughput_warmup": 1}


class Serving(TypedDict):
    """RunResult's serving fields: how it was measured, and its headline numbers."""

    serving: ServingCost
    latency_ms_p50: float
    latency_ms_p95: float
    throughput_per_s: float


class Compute(TypedDict):
    gflops_per_image: float
    train_flops: float
    model_size_mb: float


class Robustness(TypedDict):
    robustness: dict[str, float]  # corruption -> accuracy
    robustness_mean: float


class Deployable(TypedDict):
    """RunResult's ONNX fields: the export's whole record (onnx_export.OnnxResult), and its headline numbers."""

    onnx: dict[str, Any]
    onnx_agreement: float | None
    onnx_accuracy: float | None
    onnx_latency_ms_p50: float | None


def evaluate_final(model: nn.Module, task: Task, cfg: dict[str, Any], device: torch.device, folder: Path,
                   images_trained: int) -> dict[str, Any]:
    """Every measurement above for a trained MODEL; writes FOLDER/predictions.npz and FOLDER/model.onnx.

    Returns the summary keys (RunResult fields, jobs/engine/run_result.py) to add to the run's summary. The
    measurements made from the test predictions are the registered ones (jobs/engine/measure/registry.py): a new
    one is a module of this room and a RunResult field."""
    errors: dict[str, str] = {}

    def attempt(name: str, measure: Callable[[], T]) -> T | None:
        """MEASURE's value; None, its reason in final_evaluation_errors[NAME], when it fails."""
        try:
            return measure()
        except Exception as exc:  # noqa: BLE001 - one measurement that fails is recorded, the run stands
            errors[name] = onnx_export.short_reason(exc)
            traceback.print_exc()
            return None

    detection = task.kind == "detection"
    was_training = model.training
    model.eval()
    out: dict[str, Any] = {}
    out |= attempt("serving", lambda: measure_serving(model, task, cfg, device, detection)) or {}
    out |= attempt("compute", lambda: measure_compute(model, task, cfg, detection, images_trained)) or {}
    outputs = attempt("predictions", lambda: keep_predictions(model, task, folder, detection))
    for name, measure in prediction_measures().items() if outputs is not None else ():
        out |= attempt(name, lambda measure=measure: measure(*outputs)) or {}
    out |= attempt("robustness", lambda: measure_robustness(model, task, cfg, device)) or {}
    if not detection and cfg["export_onnx"]:
        out |= attempt("onnx", lambda: export_onnx(model, task, cfg, folder)) or {}
    model.train(was_training)
    return {**out, "final_evaluation_errors": errors}


def measure_serving(model: nn.Module, task: Task, cfg: dict[str, Any], device: torch.device,
                    detection: bool) -> Serving:
    if detection:
        canvases = as_float(task.canvases("test").images[: cfg["serving_batch"]])
        cost = serving.detection_serving_cost(model, cfg["canvas_size"], canvases, precision=cfg["precision"],
                                              batch=cfg["serving_batch"], latency_calls=cfg["serving_calls"],
                                              **THROUGHPUT)
    else:
        images = prepare_batch(task.data.test_images[: cfg["serving_batch"]], False,
                               channels_last=cfg["channels_last"])
        cost = serving.serving_cost(model, cfg["precision"], images, batch=cfg["serving_batch"],
                                    latency_calls=cfg["serving_calls"], **THROUGHPUT)
    return {"serving": cost, "latency_ms_p50": cost["latency_ms_p50"], "latency_ms_p95": cost["latency_ms_p95"],
            "throughput_per_s": cost["throughput_per_s"]}


def measure_compute(model: nn.Module, task: Task, cfg: dict[str, Any], detection: bool,
                    images_trained: int) -> Compute:
    if detection:
        gflops = flops.detection_gflops_per_canvas(model, as_float(task.canvases("test").images[:2]),
                                                   cfg["canvas_size"])
    else:
        gflops = flops.gflops_per_image(model, inputs=prepare_batch(task.data.test_images[:2], False))
    return {"gflops_per_image": gflops, "train_flops": flops.training_flops(gflops * 1e9, images_trained),
            "model_size_mb": flops.model_size_mb(model)}


class TestOutputs(NamedTuple):
    """A final run's test outputs, what the registered measurements take: LABELS and PREDICTED int [N];
    PROBABILITIES float32 [N, 10], None for the detector."""

    labels: np.ndarray
    predicted: np.ndarray
    probabilities: np.ndarray | None


@torch.no_grad()
def keep_predictions(model: nn.Module, task: Task, folder: Path, detection: bool) -> TestOutputs:
    """Write FOLDER/predictions.npz (labels, predictions, probabilities, the images got wrong, most confident
    first; the detector's example canvases) whole or not at all; returns what it holds for the measurements."""
    images, labels = task.data.test_images, task.data.test_labels.cpu().numpy()
    # The test evaluation just before kept what it computed (tasks/*.py evaluate): reused, not computed again.
    predicted, probabilities = task.test_outputs(model)
    confidence = None if probabilities is None else probabilities.max(1)
    extra = detection_examples(model, task) if detection else {}
    wrong = np.flatnonzero(predicted != labels)
    if confidence is not None:
        wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
    wrong = wrong[:MAX_ERROR_IMAGES]
    arrays = {"labels": labels.astype(np.int16), "predictions": predicted.astype(np.int16),
              "error_indices": wrong.astype(np.int32), "error_images": images[wrong].cpu().numpy().astype(np.uint8),
              **extra}
    if probabilities is not None:
        arrays["probabilities"] = probabilities.astype(np.float16)  # 20 bytes an image: the file stays small
    # Whole or not at all (a full disk mid-write leaves no predictions.npz, never half of one); the temporary name
    # ends in .npz, so numpy writes it as named.
    with replacing(Path(folder) / PREDICTIONS_FILE) as temporary:
        np.savez_compressed(temporary, **arrays)
    return TestOutputs(labels, predicted, probabilities)


def detection_examples(model: nn.Module, task: Task) -> dict[str, np.ndarray]:
    """A few test canvases with their true and predicted boxes, as flat arrays with per-canvas counts."""
    canvases = task.canvases("test")
    n = min(DETECTION_CANVASES, len(canvases))
    outputs = model(as_float(canvases.images[:n]))
    targets = canvases.targets(slice(0, n), "cpu")
    keep = [out["scores"] >= 0.5 for out in outputs]
    return {
        "canvases": canvases.images[:n].cpu().numpy().astype(np.uint8),
        "true_boxes": torch.cat([t["boxes"] for t in targets]).numpy().astype(np.float32).reshape(-1, 4),
        "true_labels": torch.cat([t["labels"] for t in targets]).numpy().astype(np.int16) - 1,
        "true_counts": np.array([len(t["boxes"]) for t in targets], dtype=np.int32),
        "pred_boxes": torch.cat([o["boxes"][k].cpu() for o, k in zip(outputs, keep, strict=True)]).numpy()
        .astype(np.float32).reshape(-1, 4),
        "pred_labels": torch.cat([o["labels"][k].cpu() for o, k in zip(outputs, keep, strict=True)]).numpy()
        .astype(np.int16) - 1,
        "pred_scores": torch.cat([o["scores"][k].cpu() for o, k in zip(outputs, keep, strict=True)]).numpy()
        .astype(np.float16),
        "pred_counts": np.array([int(k.sum()) for k in keep], dtype=np.int32),
    }


@torch.no_grad()
def measure_robustness(model: nn.Module, task: Task, cfg: dict[str, Any], device: torch.device
                       ) -> Robustness | None:
    """Accuracy on each corruption of the first `robustness_images` test images; their mean."""
    n = cfg["robustness_images"]
    if n == 0:
        return None
    images = task.data.test_images[:n].to(device)
    labels = task.data.test_labels[:n].cpu().numpy()
    scores = {}
    for name in CORRUPTIONS:
        predicted = task.predict(model, corrupt(images, name, CORRUPTION_SEED))
        scores[name] = float((predicted == labels).mean())
    return {"robustness": scores, "robustness_mean": float(np.mean(list(scores.values())))}


def export_onnx(model: nn.Module, task: Task, cfg: dict[str, Any], folder: Path) -> Deployable:
    """model.onnx in FOLDER if deployable (else model.not-deployable.onnx), checked on the first
    `onnx_check_images` test images (0 = all of them), and never on fewer than onnx_export.MIN_CHECK_IMAGES that
    the test split has: fewer cannot show the agreement a deployable model needs."""
    available = len(task.data.test_labels)
    n = min(max(cfg["onnx_check_images"] or available, onnx_export.MIN_CHECK_IMAGES), available)
    images = prepare_batch(task.data.test_images[:n], False)
    result = onnx_export.export_and_check(model, images, task.data.test_labels[:n], Path(folder) / ONNX_FILE,
                                          latency_calls=cfg["serving_calls"])
    record = result.as_dict()
    record["path"] = Path(result.path).name if result.path else None  # beside checkpoint.pt, wherever it goes
    return {"onnx": record, "onnx_agreement": result.agreement, "onnx_accuracy": result.onnx_accuracy,
            "onnx_latency_ms_p50": (result.latency or {}).get("latency_ms_p50")}
