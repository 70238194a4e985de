"""A trained classifier exported to ONNX and checked under ONNX Runtime: does it still predict the same digits,
and how fast is it there.

Export: `torch.onnx.export`, first with the torch.export-based exporter (`dynamo=True`, PyTorch's default since
2.9), then, if that fails OR its file does not agree with PyTorch, with the legacy TorchScript exporter
(`dynamo=False`): each exporter can be wrong where the other is right (the TorchScript tracer records the branch
and the Python numbers of its example; torch.export refuses a data-dependent branch, or silently fixes a batch
size read with `len()`). The result lists every attempt. The batch dimension is dynamic. The exported graph is
fp32 (the weights are; bf16 is only the loop's autocast) and is compared with the PyTorch model in fp32.

Deployable: a file is presented as the model to deploy (PATH, e.g. model.onnx) only when ONNX Runtime predicts
the same class as PyTorch, with finite logits of the same shape, on at least REQUIRED_AGREEMENT of at least
MIN_CHECK_IMAGES images. Otherwise the closest attempt is kept beside it as `<name>.not-deployable.onnx`: kept,
not removed, because it is what shows where the export goes wrong (open it next to the model), and nothing
computed is thrown away; its name says it is not to be served.

Check: ONNX Runtime's CPUExecutionProvider, with as many intra-op threads as the run holds (`torch.get_num_threads()`),
predicts the given images; agreement = fraction of images where its argmax equals PyTorch's. Latency at batch 1 uses
jobs/engine/measure/serving.py's `measure_latency`, the same method as the model's own.

Nothing here raises for a model that cannot be exported or checked: the result records a short reason. Both
exporters' Python output is silenced; the legacy exporter's C++ side still prints the TorchScript graph to stdout
when it fails, which only a file-descriptor redirect (unsafe beside other threads' output) would hide.
"""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
from torch import nn

from jobs.engine.atomic import replacing
from jobs.engine.measure.serving import LATENCY_CALLS, LATENCY_WARMUP, Clock, Latency, measure_latency, model_device

INPUT_NAME, OUTPUT_NAME = "images", "logits"
CHECK_BATCH = 256
EXPORTERS = ("dynamo", "torchscript")  # the order tried: torch.export is PyTorch's own and its default
# The project's bar for a deployable ONNX model: ONNX Runtime's prediction equals PyTorch's on 99.9% of test images,
# i.e. at most one in a thousand differs (float rounding can flip a near-tie; a wrong graph flips far more).
REQUIRED_AGREEMENT = 0.999
# Fewer images cannot show 99.9%: the measured agreement moves in steps of 1/N, and below N = 1,000 one image
# already weighs more than the 0.1% allowed, so a perfect score on 500 images says nothing at the required grain.
MIN_CHECK_IMAGES = 1_000
NOT_DEPLOYABLE = ".not-deployable"  # inserted before .onnx in the name of a file that failed the check
REASON_CHARS = 300
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the dynamo exporter colours its messages


class Attempt(TypedDict):
    """One exporter tried: its agreement with PyTorch (None if not checked) and why not (None if it agrees)."""

    exporter: str
    agreement: float | None
    reason: str | None


@dataclass
class OnnxResult:
    """What `export_and_check` found. `ok` only when the model was exported, checked under ONNX Runtime AND is
    deployable (agrees with PyTorch as REQUIRED_AGREEMENT asks, on at least MIN_CHECK_IMAGES images)."""

    ok: bool = False
    exported: bool = False
    deployable: bool = False
    required_agreement: float = REQUIRED_AGREEMENT
    exporter: str | None = None  # "dynamo" (torch.export-based) or "torchscript" (legacy): the file kept
    reason: str | None = None  # why not ok, short
    dynamo_error: str | None = None  # why the dynamo exporter failed, when the legacy one was tried after it
    # Every exporter tried, in order: {"exporter", "agreement" (None if not checked), "reason" (None if it agrees)}.
    attempts: list[Attempt] = field(default_factory=list)
    opset: int | None = None
    onnx_size_mb: float | None = None  # 10^6 bytes
    images: int = 0  # images compared
    agreement: float | None = None  # fraction of IMAGES where ONNX Runtime's argmax == PyTorch's
    max_abs_logit_diff: float | None = None
    onnx_accuracy: float | None = None  # against the labels given, fraction
    torch_accuracy: float | None = None
    latency: Latency = field(default_factory=Latency)  # serving.measure_latency of ONNX Runtime at batch 1
    threads: int | None = None  # ONNX Runtime intra-op threads
    path: str | None = None  # the .onnx file kept, when asked to keep it: PATH, or not_deployable(PATH)

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
    """Every exporter failed; each one's short reason by exporter name."""

    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__("both exporters failed: " + "; ".join(f"{name}: {why}" for name, why in reasons.items()))
        self.reasons = reasons
        self.dynamo_error = reasons.get("dynamo")


def export_with(exporter: str, model: nn.Module, example: torch.Tensor, path: str | Path,
                opset: int | None = None) -> None:
    """Write MODEL (on the CPU, eval mode) to PATH as ONNX with EXPORTER ("dynamo" or "torchscript"), with input
    "images" [batch, ...] and output "logits" [batch, C], the batch dynamic.

    EXAMPLE: a float [B, ...] CPU input; B >= 2, since torch.export specialises a dimension of size 1 to a
    constant, which would make the batch static. Raises whatever the exporter raises."""
    kwargs: dict[str, Any] = {"input_names": [INPUT_NAME], "output_names": [OUTPUT_NAME], "opset_version": opset}
    # Both exporters print progress or, on failure, the whole graph to stdout: keep the run's log readable.
    with _quiet():
        if exporter == "dynamo":
            # external_data=False: weights inside the one .onnx file (ours are far below protobuf's 2 GB limit).
            torch.onnx.export(model, (example,), str(path), dynamo=True, verbose=False, external_data=False,
                              dynamic_shapes=({0: torch.export.Dim("batch")},), **kwargs)
        elif exporter == "torchscript":
            torch.onnx.export(model, (example,), str(path), dynamo=False,
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, **kwargs)
        else:
            raise ValueError(f"unknown exporter {exporter!r}; expected one of {', '.join(EXPORTERS)}")


def export(model: nn.Module, example: torch.Tensor, path: str | Path,
           opset: int | None = None) -> tuple[str, str | None]:
    """Write MODEL to PATH as ONNX (see export_with) with the first of EXPORTERS that succeeds, unchecked.
    Returns (exporter used, the dynamo exporter's reason for failing or None). Raises ExportError if all fail."""
    reasons: dict[str, str] = {}
    for exporter in EXPORTERS:
        try:
            export_with(exporter, model, example, path, opset)
            return exporter, reasons.get("dynamo")
        except Exception as exc:  # noqa: BLE001 - any failure of one exporter means: try the next
            reasons[exporter] = short_reason(exc)
    raise ExportError(reasons)


def not_deployable(path: str | Path) -> Path:
    """Where a checked file that is not deployable is kept: model.onnx -> model.not-deployable.onnx."""
    path = Path(path)
    return path.with_name(f"{path.stem}{NOT_DEPLOYABLE}{path.suffix}")


@dataclass
class Check:
    """One exported file against PyTorch: LOGITS from ONNX Runtime [N, C] (None if it could not run), AGREE
    per image (bool [N]: finite logits and the same argmax), and why it is not deployable (None if it is)."""

    logits: np.ndarray | None
    agree: np.ndarray | None
    problem: str | None

    @property
    def agreement(self) -> float | None:
        return float(self.agree.mean()) if self.agree is not None else None


def check_file(run: Any, images: np.ndarray, torch_logits: np.ndarray) -> Check:
    """Compare RUN (ONNX Runtime on a float32 [B, ...] batch) with TORCH_LOGITS [N, C] on IMAGES [N, ...].

    Not deployable when it cannot run, returns another shape, returns a non-finite logit for any image (such an
    image counts as disagreeing whatever its argmax), agrees on fewer than REQUIRED_AGREEMENT of the images, or
    was checked on fewer than MIN_CHECK_IMAGES."""
    try:
        onnx_logits = predict(run, images)
    except Exception as exc:  # noqa: BLE001 - a file ONNX Runtime cannot run is an attempt that failed
        return Check(None, None, f"ONNX Runtime cannot run it: {short_reason(exc)}")
    if onnx_logits.shape != torch_logits.shape:
        return Check(onnx_logits, None, f"ONNX Runtime returns logits of shape {list(onnx_logits.shape)}, "
                                        f"PyTorch {list(torch_logits.shape)}")
    finite = np.isfinite(onnx_logits).all(axis=1)
    agree = finite & (onnx_logits.argmax(1) == torch_logits.argmax(1))
    n, share = len(agree), float(agree.mean())
    problems = []
    if (~finite).any():
        problems.append(f"non-finite logits for {int((~finite).sum())} of {n} images")
    if share < REQUIRED_AGREEMENT:
        problems.append(f"agreement {share:.2%} on {n} test images, below the {REQUIRED_AGREEMENT:.1%} required")
    elif n < MIN_CHECK_IMAGES:
        problems.append(f"checked on {n} test images, too few to show {REQUIRED_AGREEMENT:.1%} agreement "
                        f"(at least {MIN_CHECK_IMAGES:,})")
    return Check(onnx_logits, agree, "; ".join(problems) or None)


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
                     latency_warmup: int = LATENCY_WARMUP, clock: Clock = time.perf_counter,
                     exporters: tuple[str, ...] = EXPORTERS) -> OnnxResult:
    """Export MODEL to ONNX, check its predictions on IMAGES under ONNX Runtime, time it at batch 1. Never raises.

    MODEL: a classifier taking float [B, *shape] and returning logits [B, C]; it may be on any device (a CPU copy
    is exported, the model itself is left as it was). IMAGES: float [N, *shape] test inputs, N >= 2, normalised
    as the model expects (N >= MIN_CHECK_IMAGES for a deployable verdict). LABELS: optional int [N] true classes,
    for the accuracies. PATH: where to keep the deployable .onnx file; a file that is not deployable is kept at
    not_deployable(PATH) instead, and PATH is not written; None exports to a temporary folder removed afterwards.
    LATENCY_CALLS, LATENCY_WARMUP, CLOCK: as serving.measure_latency (latency_calls=0 skips the timing; a file
    that is not deployable is not timed). EXPORTERS: tried in this order until one's file is deployable.

    Returns an OnnxResult (see its fields; `as_dict()` for a plain dict). ok=False with a short `reason` when
    export fails with every exporter, when no exported file is deployable (its agreement and the attempts are
    recorded), when the model's output is not logits [N, C] (the detector: its per-canvas box lists have no
    argmax to compare), or when PyTorch itself cannot run it.
    """
    result = OnnxResult(threads=torch.get_num_threads())
    try:
        return _export_and_check(model, images, labels, path, opset, latency_calls, latency_warmup, clock, result,
                                 exporters)
    except ExportError as exc:
        result.ok, result.reason, result.dynamo_error = False, str(exc)[:2 * REASON_CHARS], exc.dynamo_error
        return result
    except Exception as exc:  # noqa: BLE001 - a model that cannot be exported or checked is recorded, never fatal
        result.ok, result.reason = False, short_reason(exc)
        return result


def _export_and_check(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None, path: str | Path | None,
                      opset: int | None, latency_calls: int, latency_warmup: int, clock: Clock,
                      result: OnnxResult, exporters: tuple[str, ...]) -> OnnxResult:
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
        target = Path(path) if path is not None else None
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
        # Candidates beside the target: the one kept is renamed within one filesystem (jobs/engine/atomic.py).
        with tempfile.TemporaryDirectory(dir=target.parent if target else None, prefix=".onnx-") as folder:
            kept, check = _first_deployable(cpu_model, x, torch_logits, Path(folder), opset, result, exporters)
            result.exported, result.onnx_size_mb = True, kept.stat().st_size / 1e6
            result.opset = _opset(kept)
            if result.deployable and latency_calls > 0:
                run = _runner(session(kept, result.threads or 1))
                singles = [x[i:i + 1].numpy() for i in range(min(len(x), latency_calls))]
                turn = itertools.count()
                result.latency = measure_latency(lambda: run(singles[next(turn) % len(singles)]), latency_calls,
                                                 latency_warmup, clock)
                result.latency.update({"unit": "image", "device": "cpu", "runtime": "onnxruntime",
                                       "threads": result.threads, "latency_batch": 1})
            if target is not None:
                destination = target if result.deployable else not_deployable(target)
                with replacing(destination) as temporary:
                    os.replace(kept, temporary)
                result.path = str(destination)
        if labels is not None and check.logits is not None:
            truth = labels.detach().cpu().numpy()
            result.onnx_accuracy = float((check.logits.argmax(1) == truth).mean())
            result.torch_accuracy = float((torch_logits.argmax(1) == truth).mean())
        result.ok = result.deployable
        return result
    finally:
        model.train(was_training)


def _first_deployable(model: nn.Module, x: torch.Tensor, torch_logits: np.ndarray, folder: Path, opset: int | None,
                      result: OnnxResult, exporters: tuple[str, ...]) -> tuple[Path, Check]:
    """Export with each of EXPORTERS in turn into FOLDER and check each file, until one is deployable; fill RESULT
    from the one kept (the deployable one, else the one that agrees most) and return its path and check. Raises
    ExportError when no exporter wrote a file that ONNX Runtime could run to logits of the right shape."""
    best: tuple[float, Path, Check, str] | None = None
    failures: dict[str, str] = {}
    for exporter in exporters:
        file = folder / f"{exporter}.onnx"
        try:
            export_with(exporter, model, x[:2], file, opset)
        except Exception as exc:  # noqa: BLE001 - one exporter failing means: try the next
            failures[exporter] = short_reason(exc)
            result.attempts.append({"exporter": exporter, "agreement": None, "reason": failures[exporter]})
            continue
        check = check_file(_runner(session(file, result.threads or 1)), x.numpy(), torch_logits)
        result.attempts.append({"exporter": exporter, "agreement": check.agreement, "reason": check.problem})
        score = check.agreement if check.agreement is not None else -1.0
        if check.logits is not None and check.agree is not None and (best is None or score > best[0]):
            best = (score, file, check, exporter)
        if check.problem is None:
            break
        failures[exporter] = check.problem
    result.dynamo_error = failures.get("dynamo") if "dynamo" in exporters else None
    if best is None:
        raise ExportError(failures)
    _, file, check, exporter = best
    result.exporter, result.images, result.agreement = exporter, len(x), check.agreement
    result.deployable = check.problem is None
    difference = np.abs(check.logits - torch_logits)
    result.max_abs_logit_diff = float(difference.max()) if np.isfinite(difference).all() else None  # JSON has no inf
    if not result.deployable:
        tried = "; ".join(f"{a['exporter']}: {a['reason']}" for a in result.attempts)
        result.reason = f"not deployable: {check.problem} ({tried})"[:2 * REASON_CHARS]
    return file, check


def _runner(ort_session: Any) -> Any:
    name = ort_session.get_inputs()[0].name
    return lambda batch: ort_session.run(None, {name: batch})[0]


def _opset(path: Path) -> int | None:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
