"""The declared run config: every key of the loop and of each model, with its type, default, bounds and meaning.

A run's config is one flat namespace (a key is the loop's or the model's, never both), so `--set key=value`,
`--space` files, presets and Ray Tune's sampled values all name keys the same way. All of them go through one
pydantic model per architecture (`config_type`), built from the declarations: the loop's below, the model's in
its `@register_model(params=...)`. A value of the wrong type, a NaN or infinity, or a number outside its bounds
is one UsageError naming the key, the bound and the value, raised on the driver before Ray starts.
`python -m jobs.train --model M --help-config` prints the table.
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, create_model

import models
from jobs.engine.errors import UsageError
from jobs.engine.presets import PRESETS
from models import Param

# The smallest training batch: BatchNorm's batch statistics need two values per channel where the map is 1x1
# (jobs/engine/data/batches.py folds a smaller remainder into the batch before it).
MIN_BATCH = 2

LOOP_PARAMS: dict[str, Param] = {
    "optimizer": Param("adamw", "optimizer", choices=("adamw", "sgd")),
    "lr": Param(3e-3, "peak learning rate (of the head, for fine-tuned models)", gt=0, le=10),
    "weight_decay": Param(0.05, "decoupled weight decay (AdamW) or L2 (SGD)", ge=0, le=1),
    "momentum": Param(0.9, "SGD momentum; OneCycle cycles it for SGD", ge=0, lt=1),
    "nesterov": Param(True, "Nesterov momentum for SGD"),
    "schedule": Param("onecycle", "learning-rate schedule over all steps", choices=("onecycle", "cosine", "constant")),
    "label_smoothing": Param(0.0, "cross-entropy label smoothing", ge=0, lt=1),
    "epochs": Param(5, "passes over the training split", ge=1, le=10_000),
    # At least MIN_BATCH: a step of one image is one BatchNorm cannot train on where a map is 1x1 (batches.py).
    "batch_size": Param(128, "images per step, per worker", ge=MIN_BATCH, le=65_536),
    "eval_batch_size": Param(1000, "images per forward when evaluating", ge=1, le=1_000_000),
    "seed": Param(0, "seed of weights, shuffling and augmentation", ge=0, le=2**31 - 1),
    "augment": Param(True, "random shifts and rotations of training images"),
    "shift_px": Param(2.0, "largest random shift, pixels", ge=0, le=14),
    "rotate_deg": Param(10.0, "largest random rotation, degrees", ge=0, le=180),
    "grad_clip": Param(0.0, "clip the gradient norm to this; 0 = no clipping", ge=0, le=1e6),
    # NHWC lets oneDNN/cuDNN skip layout conversions around batch norm and pooling: about 20% faster for the CNN on
    # the CPU (BENCHMARKS.md).
    "channels_last": Param(True, "NHWC memory layout for batches and conv weights"),
    "train_limit": Param(0, f"training images used, 0 or at least {MIN_BATCH} per worker; 0 = every image of the "
                            "split", ge=0),
    "val_limit": Param(0, "validation images used; 0 = all", ge=0),
    "test_limit": Param(0, "test images used; 0 = all", ge=0),
    "evaluate_test": Param(True, "evaluate on the test split (False in sweep trials: it is for the final run)"),
    "train_on_val": Param(False, "train on train + validation (the sweep's final retrain)"),
    "fail_at_epoch": Param(-1, "fault injection: raise once at this epoch; -1 = never", ge=-1),
    "val_checks_per_epoch": Param(1, "validation checks (Tune reports) per epoch: rungs for ASHA in short trials; "
                                     "the captured CUDA step checks once an epoch", ge=1, le=100),
    # What a final run measures after its test evaluation (jobs/engine/measure/final_evaluation.py).
    "serving_batch": Param(256, "batch of the serving throughput measurement", ge=1, le=65_536),
    "serving_calls": Param(100, "timed calls at batch 1 for the serving latency (after a warm-up)", ge=1,
                           le=100_000),
    "export_onnx": Param(True, "export the final model to ONNX (model.onnx) and check it under ONNX Runtime"),
    "onnx_check_images": Param(0, "test images the ONNX export is checked on, never fewer than 1,000 the test "
                                  "split has (fewer cannot show 99.9% agreement); 0 = all", ge=0),
    "robustness_images": Param(10_000, "test images scored under each corruption; 0 = no robustness check", ge=0),
    # The static-shape step captured as a CUDA graph (jobs/engine/train/static_step.py): auto = on CUDA only; on the CPU
    # it has nothing to capture and the eager loop is as fast, so `on` there only runs the same static step.
    "compile": Param("auto", "capture the training step as a CUDA graph", choices=("auto", "on", "off")),
    # bf16 autocast: auto = on CUDA, and on CPUs with native bf16 for the models that gain (jobs/engine/precision.py).
    "precision": Param("auto", "autocast precision", choices=("auto", "bf16", "fp32")),
}
LOOP_DEFAULTS: dict[str, Any] = {key: param.default for key, param in LOOP_PARAMS.items()}
# The preset's settings for a CUDA worker; the worker applies them (the driver does not know the device). A key
# set explicitly (`--set`, a sweep's sampled point) is dropped from them, so it wins as it does on a CPU.
GPU_KEY = "gpu_overrides"


def declared(model: str) -> dict[str, Param]:
    """Every key of a run of MODEL: the loop's, then the model's. Raises UsageError for an unknown model."""
    try:
        return {**LOOP_PARAMS, **models.params(model)}
    except models.ConfigError as exc:
        raise UsageError(str(exc)) from None


def _split_commas(value: Any) -> Any:
    # A tuple key (cnn channels) written as text: `--set channels=16,32`, or a search space's "16,32".
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _value_type(default: Any) -> Any:
    """The type of a key whose default is DEFAULT, without its bounds: what a value is converted to."""
    kind = type(default)
    if kind is tuple:
        item = type(default[0]) if default else int
        return Annotated[tuple[item, ...], BeforeValidator(_split_commas)]
    return kind


def _field_type(param: Param) -> Any:
    """The key's type with its bounds or choices."""
    if param.choices is not None:
        return Literal[param.choices]
    bounds = Field(ge=param.ge, gt=param.gt, le=param.le, lt=param.lt, allow_inf_nan=False)
    kind = type(param.default)
    if kind is tuple:
        bounded = Annotated[type(param.default[0]), bounds]
        return Annotated[tuple[bounded, ...], BeforeValidator(_split_commas), Field(min_length=1)]
    if kind in (int, float):
        return Annotated[kind, bounds]
    return kind


@functools.cache
def config_type(model: str) -> type[BaseModel]:
    """The pydantic model of a run config of MODEL: one field per declared key, no other key allowed; and GPU_KEY,
    the preset's settings for a CUDA worker, each one a declared key's value (`gpu_settings_type`)."""
    fields: dict[str, tuple[Any, Any]] = {key: (_field_type(param), Field(param.default, description=param.help))
                                          for key, param in declared(model).items()}
    gpu = gpu_settings_type(model)
    fields[GPU_KEY] = (gpu, Field(default_factory=gpu, description="the preset's settings on a CUDA worker"))
    return create_model(f"{model}_config", __config__=ConfigDict(extra="forbid", frozen=True), **fields)


@functools.cache
def gpu_settings_type(model: str) -> type[BaseModel]:
    """Any of MODEL's declared keys, typed and bounded as in the config; the ones not given are not set."""
    fields: dict[str, tuple[Any, Any]] = {key: (_field_type(param) | None, None)
                                          for key, param in declared(model).items()}
    return create_model(f"{model}_gpu_settings", __config__=ConfigDict(extra="forbid", frozen=True), **fields)


def validated(model: str, config: dict[str, Any]) -> dict[str, Any]:
    """CONFIG through the declared type: typed values (GPU_KEY only where the preset has GPU settings), or one
    UsageError naming key and bound. The one conversion of every value, whether `--set` text (`apply_overrides`),
    a space file's or a sampled one."""
    try:
        typed = config_type(model).model_validate(config)
    except ValidationError as exc:
        raise UsageError(explain(model, exc)) from None
    settings = getattr(typed, GPU_KEY).model_dump(exclude_unset=True)
    gpu = {key: settings[key] for key in config.get(GPU_KEY) or {}}  # in the preset's order, as sweep.json has it
    return {**typed.model_dump(exclude={GPU_KEY}), **({GPU_KEY: gpu} if gpu else {})}


def explain(model: str, exc: ValidationError) -> str:
    """The first problem of a ValidationError as `key=value: key must be <bounds>` (or the type expected)."""
    error = exc.errors()[0]
    where = [part for part in error["loc"] if part != GPU_KEY]  # a GPU setting is named by its key
    key = str(where[0]) if where else "?"
    params = declared(model)
    if error["type"] == "extra_forbidden":
        return f"--set {key}: unknown key; known keys: {', '.join(sorted(params))}"
    param, value = params[key], error.get("input")
    shown = f"{key}={value!r}"
    if param.choices is not None:
        return f"{shown} is not one of {', '.join(map(str, param.choices))}"
    bounds = param.bounds()
    finite = "a finite number" if isinstance(value, float) and not math.isfinite(value) else ""
    if error["type"] in ("finite_number",) or finite:
        return f"{shown}: {key} must be a finite number{' ' + bounds if bounds else ''}"
    if bounds and error["type"] in ("greater_than", "greater_than_equal", "less_than", "less_than_equal",
                                    "too_short"):
        return f"{shown}: {key} must be {bounds}"
    return f"{shown}: expected {type_name(param)} ({error['msg']})"


def type_name(param: Param) -> str:
    return value_words(param.default)


def value_words(default: Any) -> str:
    """The type of a key whose default is DEFAULT, in the words of an error line or the config table."""
    kind = type(default)
    if kind is tuple:
        return f"comma-separated {type(default[0]).__name__ if default else 'int'}s"
    return kind.__name__


def preset_config(model: str, preset: str) -> dict[str, Any]:
    """Loop defaults < model defaults < the preset's loop settings < the preset's settings for this model."""
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    params = declared(model)
    chosen = PRESETS[preset]
    config = {**{k: p.default for k, p in params.items()}, **chosen["loop"], **chosen["models"].get(model, {})}
    gpu = chosen.get("gpu", {})
    gpu = {**gpu.get("loop", {}), **gpu.get("models", {}).get(model, {})}
    return {**config, GPU_KEY: gpu} if gpu else config


def for_device(config: dict[str, Any], device_type: str) -> dict[str, Any]:
    """The config a worker on this device trains with: the preset's GPU settings applied on CUDA only."""
    config = dict(config)
    gpu = config.pop(GPU_KEY, {})
    return {**config, **gpu} if device_type == "cuda" else config


def apply_overrides(config: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    """Apply `--set key=value` pairs; a key the run does not have, or a malformed pair, is a UsageError."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set {pair!r}: expected key=value")
        if key == GPU_KEY or key not in config:
            known = ", ".join(sorted(k for k in config if k != GPU_KEY))
            raise UsageError(f"--set {key}: unknown key; known keys: {known}")
        values[key] = converted(key, text, config[key])
    return with_values(config, values)


def converted(key: str, text: str, current: Any) -> Any:
    """TEXT converted by pydantic to the type of KEY's CURRENT value, as `validated` converts any value, so that
    `check` names a bound broken by the typed value (`lr=0.0: lr must be > 0`); text of another type is a
    UsageError saying the type expected."""
    try:
        return TypeAdapter(_value_type(current)).validate_python(text.strip())
    except ValidationError:
        raise UsageError(f"--set {key}={text}: expected {value_words(current)}") from None


def with_values(config: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """CONFIG with typed VALUES set (`--set`, a trial's sampled point): an explicit value beats the GPU preset's."""
    config = {**config, **values}
    if config.get(GPU_KEY):
        config[GPU_KEY] = {k: v for k, v in config[GPU_KEY].items() if k not in values}
    return config


def check(model: str, config: dict[str, Any]) -> dict[str, Any]:
    """Types, bounds and choices of every key, then the model's own rules, on a CPU's config and a CUDA worker's
    (which must not be the first to find a bad value); the typed config, or a UsageError."""
    typed = validated(model, config)
    for device in ("cpu", "cuda") if GPU_KEY in typed else ("cpu",):
        on_device = for_device(typed, device)
        check_shares(on_device, 1)
        try:
            models.validate(model, on_device)
        except models.ConfigError as exc:
            raise UsageError(str(exc)) from None
    return typed


def check_shares(config: dict[str, Any], workers: int) -> None:
    """Each of WORKERS data-parallel ranks must get at least MIN_BATCH training images (jobs/engine/data/sharding.py
    gives each train_limit // workers): a rank with one image trains on batches of one, which BatchNorm cannot
    take, whatever the batching folds. Raises UsageError; train_limit 0 (the whole split) always passes."""
    limit = config.get("train_limit", 0)
    if limit and limit // workers < MIN_BATCH:
        images = f"{limit} training image{'s' if limit != 1 else ''}"
        whom = f"{images} over {workers} workers leave a worker" if workers > 1 else \
            f"{images} {'leave' if limit != 1 else 'leaves'} it"
        raise UsageError(f"train_limit={limit}: {whom} fewer than {MIN_BATCH}, a batch BatchNorm cannot train on; "
                         f"use at least {MIN_BATCH * workers} (or 0 for the whole split)")


def resolve(model: str, preset: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """The full, validated flat config of one run."""
    return check(model, apply_overrides(preset_config(model, preset), overrides or []))


def config_table(model: str) -> str:
    """The declared keys of MODEL as a fixed-width table: key, type, default, bounds, meaning."""
    rows = [(key, type_name(p), ",".join(map(str, p.default)) if isinstance(p.default, tuple) else str(p.default),
             p.bounds(), p.help) for key, p in declared(model).items()]
    widths = [max(len(r[i]) for r in [("key", "type", "default", "bounds", ""), *rows]) for i in range(4)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(("key", "type", "default", "bounds"), widths, strict=True))
             + "  meaning"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows]
    return "\n".join(lines)
