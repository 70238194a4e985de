"""Every point of every search space is a valid config: invalid combinations are not in the spaces."""

import itertools
import random

import pytest

import models
from jobs.engine import config as run_config
from jobs.engine.presets import PRESETS
from tune.sweep.presets import SWEEPS
from tune.sweep.spaces import SPACES, check_space


def values(entry):
    kind = next(k for k in entry if k != "grid")
    args = entry[kind]
    if kind == "choice":
        return list(args)
    if kind == "randint":
        return list(range(args[0], args[1]))
    low, high = args
    return [low, high, (low * high) ** 0.5 if kind == "loguniform" else (low + high) / 2]


def test_every_architecture_has_a_space_presets_and_a_gpu_share():
    assert set(SPACES) == set(models.model_names())
    assert all(0 < models.spec(m).gpu_share <= 1 for m in models.model_names())
    assert set(SWEEPS) == set(PRESETS)


@pytest.mark.parametrize("model", sorted(SPACES))
def test_all_combinations_are_valid_configs(model):
    check_space(SPACES[model], model)
    base = run_config.preset_config(model, "smoke")
    keys = list(SPACES[model])
    grid = list(itertools.product(*(values(SPACES[model][k]) for k in keys)))
    for point in random.Random(0).sample(grid, min(len(grid), 300)):
        pairs = [f"{k}={v}" for k, v in zip(keys, point, strict=True)]
        run_config.check(model, run_config.apply_overrides(base, pairs))  # raises on an invalid point
    for key in keys:
        grid_values = SPACES[model][key].get("grid", values(SPACES[model][key]))
        for value in grid_values:
            run_config.check(model, run_config.apply_overrides(base, [f"{key}={value}"]))


def test_vit_widths_are_divisible_by_every_head_count():
    widths, heads = SPACES["vit"]["dim"]["choice"], SPACES["vit"]["heads"]["choice"]
    assert all(w % h == 0 for w in widths for h in heads)
    assert all(28 % p == 0 for p in SPACES["vit"]["patch_size"]["choice"])
