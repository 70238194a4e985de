"""The architectures the benchmark compares, each registered under one name.

Importing this package imports every family module so that their `@register_model` decorators run.
"""

from models import cnn, faster_rcnn, finetune, resnet, vit  # noqa: F401  (registers on import)
from models.registry import (
    ConfigError,
    ModelSpec,
    Param,
    build,
    count_parameters,
    defaults,
    model_config,
    model_names,
    params,
    register_model,
    spec,
    validate,
)

__all__ = ["ConfigError", "ModelSpec", "Param", "build", "count_parameters", "defaults", "model_config", "model_names",
           "params", "register_model", "spec", "validate"]
