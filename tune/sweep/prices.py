"""What a sweep's resources cost: the declared `Prices` that sweep.json records (the sweep's `--price`) and that a
report's `--price` overrides, with the dated defaults used when neither was given."""

from __future__ import annotations

import math
from dataclasses import dataclass

from jobs.engine.atomic import JsonValue
from jobs.engine.errors import UsageError
from jobs.engine.finite import is_finite

PRICE_KEYS = ("cpu_hour", "gpu_hour")


@dataclass(frozen=True)
class Prices:
    """US dollars per hour of one vCPU and of one whole GPU; SOURCE says where the figures come from."""

    cpu_hour: float
    gpu_hour: float
    source: str = "--price"

    def to_json(self) -> dict[str, JsonValue]:
        return {"cpu_hour": self.cpu_hour, "gpu_hour": self.gpu_hour, "source": self.source}

    @classmethod
    def from_json(cls, record: JsonValue) -> Prices | None:
        """sweep.json's `prices`: None for {} (the defaults); a key it lacks keeps the default's figure. Raises
        ValueError for a record that is not an object, or a figure that is not a finite, non-negative number."""
        if not isinstance(record, dict):
            raise ValueError(f"prices must be an object such as {DEFAULT_PRICES.to_json()}, got {record!r}")
        if not record:
            return None
        values = {}
        for key in PRICE_KEYS:
            value = record.get(key, getattr(DEFAULT_PRICES, key))
            if not isinstance(value, int | float) or not is_finite(value) or value < 0:
                raise ValueError(f"prices.{key} must be a finite, non-negative number, got {value!r}")
            values[key] = float(value)
        return cls(**values, source=str(record.get("source") or "sweep.json"))


# A dated public reference, not a quote: Google Cloud Compute Engine on-demand list prices, region us-central1
# (Iowa), as listed on cloud.google.com/compute/vm-instance-pricing (N1 predefined vCPU: $0.031611 per vCPU-hour)
# and cloud.google.com/compute/gpus-pricing (NVIDIA V100 attached to an N1 VM: $2.48 per GPU-hour), 2024; not
# re-checked since. Chosen because N1 bills vCPUs and attached GPUs as separate SKUs, which is exactly how Ray
# resources are held here. Memory ($0.004237 per GiB-hour for N1), disks and network are not priced: Ray records
# no memory share. Prices change and differ by provider, region and commitment: pass --price for real figures.
DEFAULT_PRICES = Prices(cpu_hour=0.031611, gpu_hour=2.48,
                        source="Google Cloud on-demand list prices, us-central1, 2024: N1 vCPU-hour $0.031611, "
                               "NVIDIA V100 GPU-hour $2.48 (a dated reference, not a quote)")


def parse_prices(text: str | None, defaults: Prices = DEFAULT_PRICES) -> Prices:
    """Prices from a `--price` text such as "cpu_hour=0.05,gpu_hour=2.50" (US dollars per vCPU-hour, GPU-hour).

    Keys not given keep DEFAULTS' figures; None or blank text returns DEFAULTS. Spaces around keys and values are
    ignored. Raises ValueError naming the problem for: an item without "=", an unknown or repeated key, a value
    that is not a number, negative, NaN or infinite.
    """
    if text is None or not text.strip():
        return defaults
    given: dict[str, float] = {}
    for item in text.split(","):
        key, sep, raw = (part.strip() for part in item.partition("="))
        if not sep:
            raise ValueError(f"--price: expected key=value, got {item.strip()!r} (keys: {', '.join(PRICE_KEYS)})")
        if key not in PRICE_KEYS:
            raise ValueError(f"--price: unknown key {key!r}; known keys: {', '.join(PRICE_KEYS)}")
        if key in given:
            raise ValueError(f"--price: {key} is given twice")
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"--price: {key} must be a number of US dollars per hour, got {raw!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"--price: {key} must be a finite, non-negative number, got {raw!r}")
        given[key] = value
    return Prices(cpu_hour=given.get("cpu_hour", defaults.cpu_hour), gpu_hour=given.get("gpu_hour", defaults.gpu_hour),
                  source=f"--price {text.strip()}" + ("" if len(given) == len(PRICE_KEYS)
                                                      else f"; otherwise {defaults.source}"))


def price_flag(text: str | None) -> Prices | None:
    """A command's `--price` text (`parse_prices`), None when the flag was not given; a bad one is a UsageError
    (one `error:` line, exit 2)."""
    if text is None:
        return None
    try:
        return parse_prices(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
