"""The run config: loop defaults, a model's defaults and a preset merged into one flat dict, then `--set`.

One flat namespace keeps `--set key=value` and the sweep's search spaces simple: a key is either the loop's or
the model's, never both.
"""

from __future__ import annotations

from typing import Any

import models
from jobs.errors import UsageError
from tune.presets import PRESETS

LOOP_DEFAULTS: dict[str, Any] = {
    "optimizer": "adamw",
    "lr": 3e-3,
    "weight_decay": 0.05,
    "momentum": 0.9,
    "nesterov": True,
    "schedule": "onecycle",
    "label_smoothing": 0.0,
    "epochs": 5,
    "batch_size": 128,  # per worker
    "eval_batch_size": 1000,
    "seed": 0,
    "augment": True,
    "shift_px": 2.0,
    "rotate_deg": 10.0,
    "grad_clip": 0.0,
    # NHWC lets oneDNN/cuDNN skip layout conversions around batch norm and pooling: about 20% faster for the CNN on CPU.
    "channels_last": True,
    "train_limit": 0,  # 0 = every sample of the split
    "val_limit": 0,
    "test_limit": 0,
    "evaluate_test": True,  # False inside sweep trials: the test set is for the final evaluation only
    "train_on_val": False,  # the sweep's final retrain uses train + validation
    "fail_at_epoch": -1,  # fault injection: raise once at this epoch (tests of restarts and failed trials)
    # The static-shape step captured as a CUDA graph (jobs/static_step.py): auto = on CUDA only; on the CPU it
    # has nothing to capture and the eager loop is as fast, so `on` there only runs the same static step.
    "compile": "auto",
    # bf16 autocast: auto = on CUDA, and on CPUs with native bf16 for the models that gain (jobs/precision.py).
    "precision": "auto",
}
LOOP_CHOICES = {"optimizer": ("adamw", "sgd"), "schedule": ("onecycle", "cosine", "constant"),
                "compile": ("auto", "on", "off"), "precision": ("auto", "bf16", "fp32")}
# The preset's settings for a CUDA worker; the worker applies them (the driver does not know the device). A key
# set explicitly (`--set`, a sweep's sampled point) is dropped from them, so it wins as it does on a CPU.
GPU_KEY = "gpu_overrides"
POSITIVE = ("lr", "epochs", "batch_size", "eval_batch_size")


def preset_names() -> list[str]:
    return list(PRESETS)


def preset_config(model: str, preset: str) -> dict[str, Any]:
    """Loop defaults < model defaults < the preset's loop settings < the preset's settings for this model."""
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    try:
        model_defaults = models.defaults(model)
    except models.ConfigError as exc:
        raise UsageError(str(exc)) from None
    chosen = PRESETS[preset]
    config = {**LOOP_DEFAULTS, **model_defaults, **chosen["loop"], **chosen["models"].get(model, {})}
    gpu = chosen.get("gpu", {})
    gpu = {**gpu.get("loop", {}), **gpu.get("models", {}).get(model, {})}
    return {**config, GPU_KEY: gpu} if gpu else config


def for_device(config: dict[str, Any], device_type: str) -> dict[str, Any]:
    """The config a worker on this device trains with: the preset's GPU settings applied on CUDA only."""
    config = dict(config)
    gpu = config.pop(GPU_KEY, {})
    return {**config, **gpu} if device_type == "cuda" else config


def parse_value(key: str, text: str, default: Any) -> Any:
    """Parse `text` to the type of the key's default; a wrong type is a UsageError."""
    kind = type(default)
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError
            return lowered in ("true", "1", "yes", "on")
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is tuple:
            item = type(default[0]) if default else int
            return tuple(item(part) for part in text.split(",") if part.strip())
        return text
    except ValueError:
        expected = f"comma-separated {type(default[0]).__name__}s" if kind is tuple and default else kind.__name__
        raise UsageError(f"--set {key}={text}: expected {expected}") from None


def apply_overrides(config: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    """Apply `--set key=value` pairs; a key the run does not have, or a malformed pair, is a UsageError."""
    config = dict(config)
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set {pair!r}: expected key=value")
        if key == GPU_KEY or key not in config:
            known = ", ".join(sorted(k for k in config if k != GPU_KEY))
            raise UsageError(f"--set {key}: unknown key; known keys: {known}")
        config[key] = parse_value(key, text, config[key])
        if key in config.get(GPU_KEY, {}):
            config[GPU_KEY] = {k: v for k, v in config[GPU_KEY].items() if k != key}
    return config


def check(model: str, config: dict[str, Any]) -> dict[str, Any]:
    """Validate the loop's keys and the model's; returns the config unchanged or raises UsageError."""
    for key, allowed in LOOP_CHOICES.items():
        if config[key] not in allowed:
            raise UsageError(f"{key}={config[key]!r} is not one of {', '.join(allowed)}")
    for key in POSITIVE:
        if config[key] <= 0:
            raise UsageError(f"{key} must be > 0, got {config[key]}")
    if not 0 <= config["label_smoothing"] < 1:
        raise UsageError(f"label_smoothing must be in [0, 1), got {config['label_smoothing']}")
    try:
        models.validate(model, config)
    except models.ConfigError as exc:
        raise UsageError(str(exc)) from None
    if config.get(GPU_KEY):
        check(model, for_device(config, "cuda"))  # a CUDA worker must not be the first to find a bad value
    return config


def resolve(model: str, preset: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """The full, validated flat config of one run."""
    return check(model, apply_overrides(preset_config(model, preset), overrides or []))
