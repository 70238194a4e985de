"""VGG16 and AlexNet from (fake) ImageNet weights: input adapter, minimum sizes, freezing, lr groups, smoke runs."""

import math
import os

import pytest
import torch

import models
from jobs.engine.data.augment import MEAN, STD
from jobs.engine.train.optim import param_groups
from jobs.train import main as train_main
from models.finetune import FAMILIES, ImageNetInput, min_input_size
from tests.cli import assert_usage_error, run_in_process
from tests.weights import TORCH_HOME, fake_weights

IMAGENET_MEAN, IMAGENET_STD = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])


def build(name: str, **overrides) -> torch.nn.Module:
    return models.build(name, {**models.defaults(name), **overrides})


@pytest.fixture(scope="session")
def alexnet_saved() -> dict[str, torch.Tensor]:
    return torch.load(fake_weights("alexnet"), weights_only=True)


@pytest.mark.parametrize(("name", "smallest"), [("vgg16", 32), ("alexnet", 63)])
def test_min_input_size_is_the_smallest_the_features_accept(name, smallest):
    assert min_input_size(name) == smallest == FAMILIES[name].weights.meta["min_size"][0]
    features = FAMILIES[name].constructor().features
    assert features(torch.zeros(1, 3, smallest, smallest)).shape[-2:] == (1, 1)
    with pytest.raises(RuntimeError):
        features(torch.zeros(1, 3, smallest - 1, smallest - 1))


def test_adapter_maps_mnist_grey_to_imagenet_rgb_at_the_size_asked():
    adapter = ImageNetInput(40, FAMILIES["alexnet"].weights)
    black, white = -MEAN / STD, (1 - MEAN) / STD  # pixel values 0 and 255 after the loop's normalisation
    out = adapter(torch.tensor([black, white]).view(2, 1, 1, 1).expand(2, 1, 28, 28))
    assert out.shape == (2, 3, 40, 40)
    torch.testing.assert_close(out[0, :, 0, 0], (0 - IMAGENET_MEAN) / IMAGENET_STD)
    torch.testing.assert_close(out[1, :, 5, 7], (1 - IMAGENET_MEAN) / IMAGENET_STD)


def test_defaults_load_imagenet_freeze_the_features_and_train_a_new_head(alexnet_saved):
    model = build("alexnet")
    assert model.adapter.size == 63 and model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    net = model.net
    for key in ("features.0.weight", "features.10.bias", "classifier.1.weight", "classifier.4.weight"):
        torch.testing.assert_close(net.state_dict()[key], alexnet_saved[key])
    assert net.classifier[-1].out_features == 10
    assert not any(p.requires_grad for p in net.features.parameters())
    head, pretrained = param_groups(model, {"lr": 0.01})  # the loop's own grouping, frozen layers dropped
    assert head["lr"] == 0.01 and {id(p) for p in head["params"]} == {id(p) for p in net.classifier[-1].parameters()}
    assert pretrained["lr"] == pytest.approx(0.001) and len(pretrained["params"]) == 4  # fc6 and fc7


def test_unfrozen_features_learn_at_the_backbone_rate():
    model = build("alexnet", freeze_features=False, backbone_lr_scale=0.5, input_size=96)
    assert model.adapter.size == 96 and model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    head, pretrained = param_groups(model, {"lr": 0.01})
    assert pretrained["lr"] == pytest.approx(0.005) and len(pretrained["params"]) == 14  # 5 convs + fc6 + fc7


def test_weights_none_trains_everything_from_scratch_at_full_rate():
    model = build("alexnet", weights="none")  # freeze_features only applies to pre-trained features
    (group,) = param_groups(model, {"lr": 0.01})
    assert group["lr"] == 0.01 and len(group["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize(("name", "overrides", "message"), [
    ("vgg16", {"input_size": 31}, "vgg16: input_size=31 is outside 32..224"),
    ("alexnet", {"input_size": 62}, "alexnet: input_size=62 is outside 63..224"),
    ("alexnet", {"input_size": 512}, "outside 63..224"),
    ("alexnet", {"backbone_lr_scale": 2.0}, "backbone_lr_scale must be in"),
])
def test_invalid_configs_are_rejected_before_building(name, overrides, message):
    with pytest.raises(models.ConfigError, match=message):
        models.validate(name, {**models.defaults(name), **overrides})


def test_the_train_command_rejects_an_input_size_below_the_minimum_with_one_error_line(capsys):
    done = run_in_process(train_main, ["--model", "alexnet", "--preset", "smoke", "--set", "input_size=40"], capsys)
    assert_usage_error(done, "error: alexnet: input_size=40")


@pytest.mark.slow  # starts the session's Ray
def test_ray_workers_see_the_fake_torch_home(ray_local):
    # The smoke runs below prove loading only if their workers look where the fake weights are.
    @ray_local.remote
    def worker_torch_home() -> str | None:
        return os.environ.get("TORCH_HOME")

    assert ray_local.get(worker_torch_home.remote()) == str(TORCH_HOME)


def cached_weights_stay_and_fc6_trains(name: str, saved: dict[str, torch.Tensor],
                                       trained: dict[str, torch.Tensor]) -> None:
    """Features are the cached file's (SAVED) tensors untouched, fc6 trained away from them. (Fake features are
    random, so accuracy proves nothing here; real ImageNet features would learn.)"""
    first, last = {"alexnet": ("features.0.weight", "features.10.weight"),
                   "vgg16": ("features.0.weight", "features.28.weight")}[name]
    for key in (first, last):
        torch.testing.assert_close(trained[f"net.{key}"], saved[key])
    fc6 = {"alexnet": "classifier.1.weight", "vgg16": "classifier.0.weight"}[name]
    assert not torch.equal(trained[f"net.{fc6}"], saved[fc6])


@pytest.mark.slow
def test_alexnet_smoke_run_through_ray_loads_the_cached_weights_on_the_worker_and_keeps_features_frozen(
        ray_local, data_ref, tmp_path):
    # The fine-tune wrapper (models/finetune.py) once through Ray: a retrain task, whose worker finds the weights
    # in the session's TORCH_HOME (test_ray_workers_see_the_fake_torch_home).
    from jobs.engine.run.cluster import Workers
    from jobs.engine.run.launch import train_in_task
    from tests.local_session import local_config

    fake_weights("alexnet")
    small = ["train_limit=256", "val_limit=128", "test_limit=128"]
    result = train_in_task("alexnet", local_config("alexnet", small), data_ref, Workers(1, False, 1.0), tmp_path, "run",
                           show_progress=False).to_json()
    assert result["config"]["weights"] == "imagenet" and result["config"]["freeze_features"] is True
    assert math.isfinite(result["history"][-1]["train_loss"]) and 0 <= result["test_accuracy"] <= 1
    # The retrain's last checkpoint (mmap: it holds AdamW's state too).
    trained = torch.load(tmp_path / "run" / "checkpoint" / "checkpoint.pt", weights_only=False, mmap=True)["model"]
    cached_weights_stay_and_fc6_trains("alexnet", torch.load(fake_weights("alexnet"), weights_only=True), trained)


@pytest.mark.slow  # 138M weights: writes and loads a 528 MB file
def test_vgg16_builds_from_the_cached_file_with_frozen_features_and_trains_one_step_at_its_input_size():
    # vgg16 shares models/finetune.py with alexnet (above, through Ray): here at the build level, in timm's way.
    saved = torch.load(fake_weights("vgg16"), weights_only=True)
    model = build("vgg16")
    assert model.adapter.size == min_input_size("vgg16") == 32 and model.net.classifier[-1].out_features == 10
    torch.testing.assert_close(model.net.features[28].weight, saved["features.28.weight"])
    torch.testing.assert_close(model.net.classifier[0].weight, saved["classifier.0.weight"])  # read, before training
    assert not any(p.requires_grad for p in model.net.features.parameters())
    head, pretrained = param_groups(model, {"lr": 0.01})
    assert head["lr"] == 0.01 and {id(p) for p in head["params"]} == {
        id(p) for p in model.net.classifier[-1].parameters()}
    assert pretrained["lr"] == pytest.approx(0.01 * models.defaults("vgg16")["backbone_lr_scale"])
    assert len(pretrained["params"]) == 4  # fc6 and fc7
    optimizer = torch.optim.SGD([head, pretrained], lr=0.01)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert model.net.features[0].weight.grad is None and model.net.classifier[0].weight.grad.abs().sum() > 0
    optimizer.step()
    cached_weights_stay_and_fc6_trains("vgg16", saved, model.state_dict())
