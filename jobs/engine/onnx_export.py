"""A trained classifier exported to ONNX and checked under ONNX Runtime: does it still predict the same digits,
and how fast is it there.

Export: `torch.onnx.export`, first with the torch.export-based exporter (`dynamo=True`, PyTorch's default since
2.9), then, if that fails, with the legacy TorchScript exporter (`dynamo=False`); the result says which one
produced the file and why the first one failed. The batch dimension is dynamic. The exported graph is fp32 (the
weights are; bf16 is only the loop's autocast) and is compared with the PyTorch model in fp32.

Check: ONNX Runtime's CPUExecutionProvider, with as many intra-op threads as the run holds
(`torch.get_num_threads()`), predicts the given images; agreement = fraction of images where its argmax equals
PyTorch's. Latency at batch 1 uses jobs/engine/serving.py's `measure_latency`, the same method as the model's own.

Nothing here raises for a model that cannot be exported or checked: the result records a short reason. Both
exporters' Python output is silenced; the legacy exporter's C++ side still prints the TorchScript graph to stdout
when it fails, which only a file-descriptor redirect (unsafe beside other threads' output) would hide.
"""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import re
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from jobs.engine.serving import LATENCY_CALLS, LATENCY_WARMUP, Clock, measure_latency, model_device

INPUT_NAME, OUTPUT_NAME = "images", "logits"
CHECK_BATCH = 256
REASON_CHARS = 300
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the dynamo exporter colours its messages


@dataclass
class OnnxResult:
    """What `export_and_check` found. `ok` only when the model was exported AND checked under ONNX Runtime."""

    ok: bool = False
    exported: bool = False
    exporter: str | None = None  # "dynamo" (torch.export-based) or "torchscript" (legacy), whichever wrote the file
    reason: str | None = None  # why not ok, short
    dynamo_error: str | None = None  # why the dynamo exporter failed, when the legacy one was tried after it
    opset: int | None = None
    onnx_size_mb: float | None = None  # 10^6 bytes
    images: int = 0  # images compared
    agreement: float | None = None  # fraction of IMAGES where ONNX Runtime's argmax == PyTorch's
    max_abs_logit_diff: float | None = None
    onnx_accuracy: float | None = None  # against the labels given, fraction
    torch_accuracy: float | None = None
    latency: dict[str, Any] = field(default_factory=dict)  # serving.measure_latency of ONNX Runtime at batch 1
    threads: int | None = None  # ONNX Runtime intra-op threads
    path: str | None = None  # the .onnx file, when asked to keep it

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def short_reason(error: BaseException) -> str:
    """`Type: first line` of the innermost cause: the exporters wrap the real error ("Failed to export the model
    with torch.export. This is step 1/3...") around the one that says what failed."""
    inner = error
    while inner.__cause__ is not None and inner.__cause__ is not inner:
        inner = inner.__cause__
    lines = [line.strip() for line in ANSI.sub("", str(inner)).splitlines() if line.strip()]
    return f"{type(inner).__name__}: {lines[0] if lines else ''}".rstrip(": ")[:REASON_CHARS]


class ExportError(Exception):
    """Both exporters failed; each one's short reason."""

    def __init__(self, dynamo_error: str, torchscript_error: str) -> None:
        super().__init__(f"both exporters failed: dynamo: {dynamo_error}; torchscript: {torchscript_error}")
        self.dynamo_error, self.torchscript_error = dynamo_error, torchscript_error


def export(model: nn.Module, example: torch.Tensor, path: str | Path,
           opset: int | None = None) -> tuple[str, str | None]:
    """Write MODEL (on the CPU, eval mode) to PATH as ONNX, with input "images" [batch, ...] and output "logits".

    EXAMPLE: a float [B, ...] CPU input; B >= 2, since torch.export specialises a dimension of size 1 to a
    constant, which would make the batch static. Tries the dynamo exporter, then the TorchScript one.
    Returns (exporter used, the dynamo exporter's reason for failing or None). Raises ExportError if both fail.
    """
    kwargs: dict[str, Any] = {"input_names": [INPUT_NAME], "output_names": [OUTPUT_NAME], "opset_version": opset}
    try:
        # Both exporters print progress or, on failure, the whole graph to stdout: keep the run's log readable.
        with _quiet():
            # external_data=False: weights inside the one .onnx file (ours are far below protobuf's 2 GB limit).
            torch.onnx.export(model, (example,), str(path), dynamo=True, verbose=False, external_data=False,
                              dynamic_shapes=({0: torch.export.Dim("batch")},), **kwargs)
        return "dynamo", None
    except Exception as exc:  # noqa: BLE001 - any failure of the first exporter means: try the second
        dynamo_error = short_reason(exc)
    try:
        with _quiet():
            torch.onnx.export(model, (example,), str(path), dynamo=False,
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, **kwargs)
    except Exception as exc:  # noqa: BLE001 - reported as one error with both reasons
        raise ExportError(dynamo_error, short_reason(exc)) from None
    return "torchscript", dynamo_error


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # Warnings too: the legacy exporter's DeprecationWarning and TracerWarnings; the ONNX Runtime check judges it.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def session(path: str | Path, threads: int) -> Any:
    """An ONNX Runtime CPU session with THREADS intra-op threads and one inter-op thread (ops run in sequence)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def predict(run: Any, images: np.ndarray, batch: int = CHECK_BATCH) -> np.ndarray:
    """Logits [N, C] of RUN (a callable on a float32 [B, ...] array) over IMAGES, BATCH at a time."""
    return np.concatenate([np.asarray(run(images[i:i + batch])) for i in range(0, len(images), batch)])


def export_and_check(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
                     path: str | Path | None = None, opset: int | None = None, latency_calls: int = LATENCY_CALLS,
                     latency_warmup: int = LATENCY_WARMUP, clock: Clock = time.perf_counter) -> OnnxResult:
    """Export MODEL to ONNX, check its predictions on IMAGES under ONNX Runtime, time it at batch 1. Never raises.

    MODEL: a classifier taking float [B, *shape] and returning logits [B, C]; it may be on any device (a CPU copy
    is exported, the model itself is left as it was). IMAGES: float [N, *shape] test inputs, N >= 2, normalised
    as the model expects. LABELS: optional int [N] true classes, for the accuracies. PATH: where to keep the .onnx
    file; None exports to a temporary folder removed afterwards. LATENCY_CALLS, LATENCY_WARMUP, CLOCK: as
    serving.measure_latency (latency_calls=0 skips the timing).

    Returns an OnnxResult (see its fields; `as_dict()` for a plain dict). ok=False with a short `reason` when
    export fails with both exporters, when the model's output is not logits [N, C] (the detector: its per-canvas
    box lists have no argmax to compare), or when ONNX Runtime cannot load or run the file.
    """
    result = OnnxResult(threads=torch.get_num_threads())
    try:
        return _export_and_check(model, images, labels, path, opset, latency_calls, latency_warmup, clock, result)
    except ExportError as exc:
        result.ok, result.reason, result.dynamo_error = False, str(exc)[:2 * REASON_CHARS], exc.dynamo_error
        return result
    except Exception as exc:  # noqa: BLE001 - a model that cannot be exported or checked is recorded, never fatal
        result.ok, result.reason = False, short_reason(exc)
        return result


def _export_and_check(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None, path: str | Path | None,
                      opset: int | None, latency_calls: int, latency_warmup: int, clock: Clock,
                      result: OnnxResult) -> OnnxResult:
    if len(images) < 2:
        raise ValueError(f"need at least 2 images (a batch of 1 cannot show the batch is dynamic), got {len(images)}")
    was_training = model.training
    cpu_model = model if model_device(model).type == "cpu" else copy.deepcopy(model).cpu()
    cpu_model.eval()
    try:
        x = images.detach().to("cpu", torch.float32).contiguous()
        with torch.no_grad():
            torch_logits = cpu_model(x[:CHECK_BATCH])
            if not (isinstance(torch_logits, torch.Tensor) and torch_logits.ndim == 2):
                result.reason = ("not exported: the ONNX check covers classifiers (logits [B, C]); this model "
                                 f"returns {type(torch_logits).__name__}")
                return result
            torch_logits = predict(lambda b: cpu_model(torch.from_numpy(b)).numpy(), x.numpy())
        with tempfile.TemporaryDirectory() as folder:
            target = Path(path) if path is not None else Path(folder) / "model.onnx"
            target.parent.mkdir(parents=True, exist_ok=True)
            result.exporter, result.dynamo_error = export(cpu_model, x[:2], target, opset)
            result.exported, result.onnx_size_mb = True, target.stat().st_size / 1e6
            result.path = str(target) if path is not None else None
            result.opset = _opset(target)
            ort_session = session(target, result.threads or 1)
            run = _runner(ort_session)
            onnx_logits = predict(run, x.numpy())
            result.images = len(x)
            agree = onnx_logits.argmax(1) == torch_logits.argmax(1)
            result.agreement = float(agree.mean())
            result.max_abs_logit_diff = float(np.abs(onnx_logits - torch_logits).max())
            if labels is not None:
                truth = labels.detach().cpu().numpy()
                result.onnx_accuracy = float((onnx_logits.argmax(1) == truth).mean())
                result.torch_accuracy = float((torch_logits.argmax(1) == truth).mean())
            if latency_calls > 0:
                singles = [x[i:i + 1].numpy() for i in range(min(len(x), latency_calls))]
                turn = itertools.count()
                result.latency = measure_latency(lambda: run(singles[next(turn) % len(singles)]), latency_calls,
                                                 latency_warmup, clock)
                result.latency.update({"unit": "image", "device": "cpu", "runtime": "onnxruntime",
                                       "threads": result.threads, "latency_batch": 1})
        result.ok = True
        return result
    finally:
        model.train(was_training)


def _runner(ort_session: Any) -> Any:
    name = ort_session.get_inputs()[0].name
    return lambda batch: ort_session.run(None, {name: batch})[0]


def _opset(path: Path) -> int | None:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
