"""A search over accuracy and a cost (tune/sweep/objectives.py): each configuration's cost, computed on the driver,
and the Optuna searcher that minimises it beside the accuracy Tune reports."""

from __future__ import annotations

import functools
import json
import pickle
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ray.tune.search import Searcher

from models.registry import Config

if TYPE_CHECKING:
    from ray.tune.search.optuna import OptunaSearch


@functools.lru_cache(maxsize=512)
def _cost(model: str, base_json: str, sampled_json: str, cost: str) -> float:
    import models
    from jobs.engine import config as run_config
    from jobs.engine.measure.flops import detection_gflops_per_canvas, gflops_per_image

    sampled = json.loads(sampled_json)
    if "weights" in json.loads(base_json):
        sampled["weights"] = "none"  # the same shapes without reading ImageNet weights
    # Typed as the trial's run types them: a sampled "16,32" is the tuple of channels the model is built with.
    config = run_config.check(model, run_config.with_values(json.loads(base_json), sampled))
    net = models.build(model, run_config.for_device(config, "cpu"))
    if cost == "params":
        return float(models.count_parameters(net))
    if models.spec(model).task == "detection":
        return float(detection_gflops_per_canvas(net))
    return float(gflops_per_image(net))


def config_cost(model: str, base: Config, sampled: Config, cost: str) -> float | None:
    """COST (a key of COSTS) of MODEL built with BASE and a trial's SAMPLED keys, once per distinct config; None
    when it cannot be built (the trial itself then fails with the reason)."""
    try:
        return _cost(model, json.dumps(base, sort_keys=True, default=str), json.dumps(sampled, sort_keys=True),
                     cost)
    except Exception:  # noqa: BLE001 - a config the model refuses fails its own trial, which says why
        return None


@dataclass(frozen=True)
class CostOf:
    """The cost a search minimises beside the accuracy: of MODEL built with BASE and a trial's sampled keys."""

    model: str
    base: Config
    cost: str


class WithCost(Searcher):
    """An Optuna search over accuracy and a cost: Tune reports the accuracy, the cost is the config's own
    (`config_cost`), added to each finished trial's result for the study. Optuna's study is set up here with
    both directions; Tune's metric (the accuracy) is ASHA's alone, never passed on (it would replace the two)."""

    def __init__(self, optuna: OptunaSearch, model: str, base: Config, cost: str) -> None:
        super().__init__(metric=None, mode=None)
        self.inner, self.model, self.base, self.cost = optuna, model, base, cost
        self.configs: dict[str, Config] = {}

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.inner.set_search_properties(None, None, config, **spec)

    def suggest(self, trial_id: str) -> dict | None:
        config = self.inner.suggest(trial_id)
        if isinstance(config, dict):
            self.configs[trial_id] = config
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if result and not error:
            sampled = self.configs.get(trial_id, {})
            value = config_cost(self.model, self.base, sampled, self.cost)
            result = {**result, self.cost: value} if value is not None else None
        self.inner.on_trial_complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        # The whole searcher, the configs of trials still running included: a resumed search adds their costs.
        with open(checkpoint_path, "wb") as out:
            pickle.dump(self.__dict__, out)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as saved:
            self.__dict__.update(pickle.load(saved))  # noqa: S301 - the searcher's own file, in the sweep's folder
