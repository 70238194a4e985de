"""One name per architecture: a decorator registers its builder, its declared config keys and its facts.

The loop and the sweep only ever see `build(name, config)`, `params(name)` and `spec(name)`, so adding an
architecture is one file with one decorated function (the timm registry pattern). Every fact about a model
sits in that call: its keys (type, default, bounds, meaning), the task it trains for, whether it gains from
bf16 on a CPU, and its share of a GPU in a sweep trial.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from torch import nn

# A run's flat config (jobs/engine/config.py declares every key): scalars, a model's tuple of widths, and a
# preset's nested `gpu_overrides` mapping; as JSON gives it back, a tuple may come as a list.
ConfigValue: TypeAlias = "None | bool | int | float | str | tuple[int, ...] | list[int] | dict[str, ConfigValue]"
Config = dict[str, ConfigValue]


class ConfigError(ValueError):
    """An unknown model or an invalid model config: reported as `error: ...`, exit 2."""


@dataclass(frozen=True)
class Param:
    """One config key: its default (whose type is the key's type), a one-line meaning and its bounds.

    Numbers are finite always; `ge`/`gt`/`le`/`lt` bound them, `choices` lists the values a string (or any)
    key may take. jobs/engine/config.py turns these into one pydantic model per architecture.
    """

    default: Any
    help: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | None = None

    def bounds(self) -> str:
        """The bounds in words, e.g. `> 0 and <= 10`, `one of adamw, sgd`, or '' when there are none."""
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        parts = [f"{sign} {shown_number(value)}" for sign, value in ((">=", self.ge), (">", self.gt), ("<=", self.le),
                                                          ("<", self.lt)) if value is not None]
        return " and ".join(parts)


def shown_number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[[Config], nn.Module]
    params: dict[str, Param]
    check: Callable[[Config], None] | None = None  # rules across keys (a ViT's heads must divide its width)
    task: str = "classification"  # which task (batches, loss, metrics) the one loop runs for this model
    summary: str = ""  # one line: what the architecture is (`python -m jobs.train --help-config`)
    # Checks files the builder will need (pre-trained weights) on the driver; raises ConfigError naming them.
    assets: Callable[[Config], None] | None = None
    # bf16 autocast on a CPU with native bf16 makes it train faster (measured: BENCHMARKS.md, "bf16 on this CPU").
    cpu_bf16: bool = False
    # Share of one GPU a sweep trial's worker reserves, so that small models share a card.
    gpu_share: float = 1.0

    @property
    def defaults(self) -> Config:
        return {key: param.default for key, param in self.params.items()}


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, params: dict[str, Param], check: Callable[[Config], None] | None = None,
                   task: str = "classification", summary: str = "", assets: Callable[[Config], None] | None = None,
                   cpu_bf16: bool = False, gpu_share: float = 1.0) -> Callable:
    """Decorator: `@register_model("cnn", params={...})` on a `Config -> nn.Module` builder."""
    def decorate(builder: Callable[[Config], nn.Module]) -> Callable[[Config], nn.Module]:
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelSpec(name, builder, dict(params), check, task, summary, assets, cpu_bf16, gpu_share)
        return builder
    return decorate


def model_names() -> list[str]:
    return list(_REGISTRY)


def spec(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def defaults(name: str) -> Config:
    return spec(name).defaults


def params(name: str) -> dict[str, Param]:
    return dict(spec(name).params)


def model_config(name: str, config: Config) -> Config:
    """The model's own keys out of a flat run config, defaults filled in."""
    model_spec = spec(name)
    return {key: config.get(key, default) for key, default in model_spec.defaults.items()}


def validate(name: str, config: Config) -> Config:
    """Check choices and the model's own rules; returns the model config. Raises ConfigError.

    Types and bounds are the declared config's (jobs/engine/config.py); this is what a builder needs at least."""
    model_spec = spec(name)
    cfg = model_config(name, config)
    for key, param in model_spec.params.items():
        if param.choices is not None and cfg[key] not in param.choices:
            raise ConfigError(f"{name}: {key}={cfg[key]!r} is not one of {', '.join(map(str, param.choices))}")
    if model_spec.check:
        model_spec.check(cfg)
    return cfg


def build(name: str, config: Config) -> nn.Module:
    """A fresh network for `name`, after validating its config."""
    return spec(name).builder(validate(name, config))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
