"""One name per architecture: a decorator registers its builder, its default config and its checks.

The loop and the sweep only ever see `build(name, config)` and `defaults(name)`, so adding an architecture is
one file with one decorated function (the timm registry pattern).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

Config = dict[str, Any]


class ConfigError(ValueError):
    """An unknown model or an invalid model config: reported as `error: ...`, exit 2."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[[Config], nn.Module]
    defaults: Config
    choices: dict[str, tuple] = field(default_factory=dict)
    check: Callable[[Config], None] | None = None
    task: str = "classification"  # which task (batches, loss, metrics) the one loop runs for this model
    summary: str = ""
    # Checks files the builder will need (pre-trained weights) on the driver; raises ConfigError naming them.
    assets: Callable[[Config], None] | None = None


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, defaults: Config, choices: dict[str, tuple] | None = None,
                   check: Callable[[Config], None] | None = None, task: str = "classification",
                   summary: str = "", assets: Callable[[Config], None] | None = None) -> Callable:
    """Decorator: `@register_model("cnn", defaults={...})` on a `Config -> nn.Module` builder."""
    def decorate(builder: Callable[[Config], nn.Module]) -> Callable[[Config], nn.Module]:
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelSpec(name, builder, dict(defaults), dict(choices or {}), check, task, summary,
                                    assets)
        return builder
    return decorate


def model_names() -> list[str]:
    return list(_REGISTRY)


def spec(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def defaults(name: str) -> Config:
    return dict(spec(name).defaults)


def model_config(name: str, config: Config) -> Config:
    """The model's own keys out of a flat run config, defaults filled in."""
    model_spec = spec(name)
    return {key: config.get(key, default) for key, default in model_spec.defaults.items()}


def validate(name: str, config: Config) -> Config:
    """Check choices and the model's own rules; returns the model config. Raises ConfigError."""
    model_spec = spec(name)
    cfg = model_config(name, config)
    for key, allowed in model_spec.choices.items():
        if cfg[key] not in allowed:
            raise ConfigError(f"{name}: {key}={cfg[key]!r} is not one of {', '.join(map(str, allowed))}")
    if model_spec.check:
        model_spec.check(cfg)
    return cfg


def build(name: str, config: Config) -> nn.Module:
    """A fresh network for `name`, after validating its config."""
    return spec(name).builder(validate(name, config))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
