"""Checks a model's external assets (pre-trained weights) on the driver, before any Ray work."""

from __future__ import annotations

from typing import Any

import models
from jobs.engine.errors import UsageError


def check_model_assets(model: str, config: dict[str, Any]) -> None:
    """Raise UsageError when the model needs weights that are neither cached nor downloadable."""
    check = models.spec(model).assets
    if check is None:
        return
    try:
        check(models.model_config(model, config))
    except models.ConfigError as exc:
        raise UsageError(str(exc)) from None
