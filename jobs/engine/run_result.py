"""A run's result: the one declared type of `result.json`, built from the loop's summary on the driver.

Each metric is a field, and a field's metadata says how the sweep's comparison shows it (`Compared`): adding a
metric to result.json, comparison.csv|json|md and the report's table is one field here plus the line of the
loop's summary (jobs/engine/train/summary.py `summarise`) that computes it.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict

from jobs.engine.atomic import write_atomically

RESULT_FILE = "result.json"


class Evaluation(TypedDict, total=False):
    """A task's metrics on one split (jobs/engine/tasks/ `Task.evaluate`): every task's, then the detector's own."""

    loss: float
    accuracy: float
    f1_macro: float
    f1_weighted: float
    per_class_f1: list[float]
    confusion_matrix: list[list[int]]
    predictions: list[int]
    labels: list[int]
    map_50: float  # the detector's mean average precision at IoU 0.5, and over 0.5:0.95
    map: float
    no_box: int  # plain digits on which the detector found no box


class Metrics(TypedDict, total=False):
    """One report of the loop (jobs/engine/train/loop.py): an epoch's end (one entry of `history`), a check part-way
    through an epoch (a fractional `epoch`), the finished run's (with the test_ keys, which the last entry of
    `history` carries too), or an epoch line's (with `epochs`). A rank other than 0 reports none of it; a diverged
    run reports `diverged` alone (jobs/engine/train/sessions.py)."""

    epoch: float  # 1-based; an int at an epoch's end
    train_loss: float
    val_loss: float
    val_accuracy: float
    val_f1_macro: float
    map_50: float  # the detector's
    map: float
    epoch_time_s: float
    train_time_s: float  # training seconds since the run began, at this report
    images_per_s: float
    lr: float
    first_step_at: str
    test_accuracy: float
    test_f1_macro: float
    test_loss: float
    epochs: int
    diverged: str


class Summary(TypedDict, total=False):
    """The rank-0 summary of a finished run (jobs/engine/train/summary.py), what `build_result` builds the record
    from: its keys that are RunResult fields go in as they are, `test` gives the test_ fields, and the final
    measurements (jobs/engine/measure/final_evaluation.py) add RunResult fields of their own."""

    history: list[Metrics]
    train_time_s: float
    compile_time_s: float
    step_fallback: str | None
    config: dict[str, Any]  # what the worker trained with: on CUDA with the preset's GPU settings applied
    started_at: str | None
    first_step_at: str | None
    images_per_s: float
    params: int
    peak_memory_mb: float
    device: str
    validation: Evaluation  # the last epoch's
    best_epoch: int | None
    test: Evaluation


class Environment(TypedDict, total=False):
    """Versions, device and worker layout of a run (`environment`), result.json's and sweep.json's `env` (every key
    but in a record that could not be built whole)."""

    torch: str
    torchvision: str
    ray: str
    python: str
    device: str
    workers: int
    use_gpu: bool
    cpus_per_worker: float
    host: str


class WorkerLayout(Protocol):
    """What `environment` reads of jobs/engine/run/cluster.py's Workers."""

    count: int
    use_gpu: bool
    cpus_per_worker: float


@dataclass(frozen=True)
class Compared:
    """How the comparison shows a RunResult field: averaged over seeds, with a heading and a format.

    `heading` None keeps the column in comparison.csv/json but out of the tables people read; `spread` adds
    the sample standard deviation over seeds as `<name>_std`; `only_if_any` drops a column no model has
    (mAP when no detector ran); `percent` shows a fraction as a percentage; `in_report` False keeps a column in
    comparison.md but out of the HTML report's table (which must fit 1000 px)."""

    heading: str | None = None
    digits: int = 0
    unit: str = ""
    spread: bool = False
    only_if_any: bool = False
    percent: bool = False
    in_report: bool = True


def compared(heading: str | None = None, digits: int = 0, unit: str = "", **how: Any) -> Any:
    """A RunResult field (default None) that the comparison averages over seeds and shows as described."""
    return field(default=None, metadata={"compared": Compared(heading, digits, unit, **how)})


@dataclass
class RunResult:
    """What one training run produced. Times are seconds, memory MB (2^20 bytes), accuracies fractions."""

    model: str
    config: dict[str, Any]
    test_accuracy: float | None = compared("Test accuracy", spread=True, percent=True)
    test_f1_macro: float | None = compared("Macro-F1", 4)
    # Weighted F1 equals macro F1 to three decimals on MNIST's balanced classes: comparison files only.
    test_f1_weighted: float | None = compared("Weighted-F1", 4, in_report=False)
    test_loss: float | None = compared("Test loss", 4)
    test_map_50: float | None = compared("mAP@.5", 3, only_if_any=True)
    test_map: float | None = compared("mAP", 3, only_if_any=True)
    train_time_s: float | None = compared("Train time", 1, " s", spread=True)
    wall_time_s: float | None = compared()
    epochs: int | None = compared("Epochs")
    # The epoch (1-based) whose validation accuracy was the highest: late means the run wanted more epochs.
    best_epoch: int | None = compared("Best epoch")
    params: int | None = compared("Params")
    images_per_s: float | None = compared("Images/s")
    peak_memory_mb: float | None = compared("Peak memory", 0, " MB")
    # What it costs to serve and to compute (jobs/engine/measure/final_evaluation.py): per image (per canvas for the
    # detector) at batch 1 on the run's device, precision and threads; `serving` records how it was measured.
    latency_ms_p50: float | None = compared("Latency", 2, " ms", in_report=False)
    latency_ms_p95: float | None = compared(in_report=False)
    throughput_per_s: float | None = compared(in_report=False)
    gflops_per_image: float | None = compared("GFLOPs", 4, in_report=False)
    train_flops: float | None = compared(in_report=False)  # 3 x forward FLOPs x images trained (an estimate)
    model_size_mb: float | None = compared("Size", 2, " MB", in_report=False)  # the weights, 10^6 bytes
    onnx_agreement: float | None = compared(in_report=False)  # share of test images where ONNX Runtime agrees
    onnx_accuracy: float | None = compared(in_report=False)
    onnx_latency_ms_p50: float | None = compared(in_report=False)
    # Calibration of the test probabilities (classifiers): ECE over 15 bins, NLL (nats), Brier (0..2).
    ece: float | None = compared(in_report=False)
    nll: float | None = compared(in_report=False)
    brier: float | None = compared(in_report=False)
    robustness_mean: float | None = compared(in_report=False)  # mean accuracy over the corruptions
    # Test images wrong at a top probability above 0.9 (jobs/engine/measure/confident_errors.py; classifiers).
    confident_errors: int | None = compared(in_report=False)
    robustness: dict[str, float] = field(default_factory=dict)  # corruption -> accuracy
    serving: dict[str, float | str | None] = field(default_factory=dict)  # measure/serving.py ServingCost
    onnx: dict[str, Any] = field(default_factory=dict)
    final_evaluation_errors: dict[str, str] = field(default_factory=dict)  # what could not be measured, why
    compile_time_s: float = 0.0  # capture of the static step, not in train_time_s
    # Why the captured CUDA step failed and the run trained with the eager step (jobs/engine/train/static_step.py).
    step_fallback: str | None = None
    val_accuracy: float | None = None
    history: list[Metrics] = field(default_factory=list)
    confusion_matrix: list[list[int]] | None = None
    per_class_f1: list[float] | None = None
    test_predictions: list[int] | None = None
    test_labels: list[int] | None = None
    env: Environment = field(default_factory=Environment)
    started_at: str | None = None
    finished_at: str | None = None
    first_step_at: str | None = None
    resources: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> RunResult:
        """A result.json as written by this or an earlier version: unknown keys are dropped, missing ones default.

        Raises ValueError when `model` or `config` is missing (not a result.json)."""
        if not isinstance(record, dict) or "model" not in record or "config" not in record:
            raise ValueError("not a run result: no model and config")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})

    @classmethod
    def read(cls, path: Path) -> RunResult:
        """PATH's record. Raises OSError, ValueError (json.JSONDecodeError: empty or cut short; not a run result, or
        its model or config of the wrong type) or TypeError."""
        result = cls.from_json(json.loads(Path(path).read_text()))
        if not isinstance(result.model, str) or not isinstance(result.config, dict):
            raise ValueError("its model is not a name or its config not a mapping")
        return result

    def write(self, path: Path) -> None:
        """Whole or not at all (jobs/engine/atomic.py): a full disk leaves no result.json, never an empty one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, self.to_json())


def compared_fields() -> list[tuple[str, Compared]]:
    """The RunResult fields the comparison averages over seeds, in declaration order, with how to show them."""
    return [(f.name, f.metadata["compared"]) for f in dataclasses.fields(RunResult) if "compared" in f.metadata]


def environment(workers: WorkerLayout, device: str) -> Environment:
    """Versions, device and worker layout of a run, for result.json and sweep.json."""
    import ray
    import torch
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "ray": ray.__version__,
            "python": platform.python_version(), "device": device, "workers": workers.count,
            "use_gpu": workers.use_gpu, "cpus_per_worker": workers.cpus_per_worker,
            "host": platform.node()}


def build_result(model: str, config: dict[str, Any], summary: Summary, workers: WorkerLayout,
                 wall_time_s: float) -> RunResult:
    """The RunResult of a run from its rank-0 worker's summary (jobs/engine/train/summary.py); every summary key that is
    a RunResult field is copied, so a metric the loop adds reaches result.json without an edit here."""
    test = summary.get("test", {})
    names = {f.name for f in dataclasses.fields(RunResult)}
    copied = {k: v for k, v in summary.items() if k in names}
    tested = {f"test_{k}": v for k, v in test.items() if f"test_{k}" in names}
    return RunResult(**{
        **copied,
        **tested,
        "model": model,
        # What the worker trained with: on CUDA the preset's GPU settings are applied there (jobs/engine/config.py).
        "config": dict(summary.get("config", config)),
        "wall_time_s": wall_time_s,
        "epochs": len(summary["history"]),
        "confusion_matrix": test.get("confusion_matrix"),
        "per_class_f1": test.get("per_class_f1"),
        "test_predictions": test.get("predictions"),
        "test_labels": test.get("labels"),
        "val_accuracy": summary["validation"]["accuracy"],
        "env": environment(workers, summary["device"]),
    })
