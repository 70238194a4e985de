"""The Vision Transformer: shapes, config checks (in-process and through the CLI), and a smoke run that learns."""

import math

import pytest
import torch

import models
from jobs.train import main as train_main
from models.vit import sincos_2d
from tests.cli import assert_usage_error, run_in_process
from tests.local_session import train_locally


def vit(**overrides) -> torch.nn.Module:
    return models.build("vit", {**models.defaults("vit"), **overrides})


@pytest.mark.parametrize("pool", ["cls", "mean"])
@pytest.mark.parametrize("pos_embedding", ["learned", "sincos"])
def test_builds_and_maps_a_batch_to_ten_logits(pool, pos_embedding):
    model = vit(pool=pool, pos_embedding=pos_embedding)
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    # Fixed positions are a buffer, learned ones a parameter: 49 patches of 4x4, the [CLS] token has none.
    learned = [p for n, p in model.named_parameters() if n == "position"]
    assert [tuple(p.shape) for p in learned] == ([(1, 49, 128)] if pos_embedding == "learned" else [])


@pytest.mark.parametrize("patch_size", [7, 14, 28])
def test_every_patch_size_dividing_28_works(patch_size):
    assert vit(patch_size=patch_size, depth=1)(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_sincos_positions_are_distinct_per_patch():
    positions = sincos_2d(7, 128)
    assert positions.shape == (49, 128)
    assert torch.cdist(positions, positions).add(torch.eye(49)).min() > 0.1


@pytest.mark.parametrize(("overrides", "message"), [
    ({"patch_size": 5}, "patch_size=5 does not divide"),
    ({"patch_size": 0}, "patch_size=0"),
    ({"dim": 130, "heads": 4}, "dim=130 is not divisible by heads=4"),
    ({"depth": 0}, "depth must be >= 1, got 0"),
    ({"heads": 0}, "heads must be >= 1"),
    ({"dim": 6, "heads": 2, "pos_embedding": "sincos"}, "divisible by 4"),
    ({"dropout": 1.0}, "dropout must be in"),
    ({"pool": "max"}, "pool='max' is not one of"),
])
def test_invalid_configs_are_rejected(overrides, message):
    with pytest.raises(models.ConfigError, match=message):
        vit(**overrides)


def test_the_train_command_rejects_a_bad_patch_size_with_one_error_line(capsys):
    # The config is checked before data loading and Ray, so this takes only the imports.
    done = run_in_process(train_main, ["--model", "vit", "--preset", "smoke", "--set", "patch_size=5"], capsys)
    assert_usage_error(done, "error: vit: patch_size=5")


def expected_parameters(cfg: dict) -> int:
    """The ViT's weights counted by hand from its design, independently of the module tree."""
    dim, patch, hidden = cfg["dim"], cfg["patch_size"], int(cfg["dim"] * cfg["mlp_ratio"])
    layer_norm = 2 * dim
    embedding = patch * patch * dim + dim  # a stride-`patch` conv from 1 channel, with bias
    positions = (28 // patch) ** 2 * dim if cfg["pos_embedding"] == "learned" else 0  # sin-cos is a buffer
    cls = dim if cfg["pool"] == "cls" else 0
    attention = layer_norm + dim * 3 * dim + dim * dim + dim  # qkv without bias, output projection with
    mlp = layer_norm + dim * hidden + hidden + hidden * dim + dim
    return embedding + positions + cls + cfg["depth"] * (attention + mlp) + layer_norm + dim * 10 + 10


def test_parameter_count_matches_the_design_and_the_readme():
    assert expected_parameters(models.defaults("vit")) == 796_298  # the README's table
    assert models.count_parameters(vit()) == 796_298
    for overrides in ({"pool": "cls", "pos_embedding": "learned"}, {"patch_size": 7, "depth": 1, "mlp_ratio": 3.0}):
        assert models.count_parameters(vit(**overrides)) == expected_parameters({**models.defaults("vit"), **overrides})


def test_vit_smoke_run_learns(mnist, tmp_path):
    result = train_locally("vit", mnist, tmp_path)
    assert result["history"][-1]["train_loss"] < 0.8 * math.log(10)
    assert result["test_accuracy"] > 0.3
    assert result["params"] == expected_parameters(result["config"])  # the smoke preset's 2 blocks of 14px patches
