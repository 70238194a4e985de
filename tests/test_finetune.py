"""VGG16 and AlexNet from (fake) ImageNet weights: input adapter, minimum sizes, freezing, lr groups, smoke runs."""

import math
import os

import pytest
import torch

import models
from jobs.engine.augment import MEAN, STD
from jobs.engine.optim import param_groups
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


@pytest.mark.slow  # 138M weights: writes and loads a 528 MB file
def test_vgg16_loads_the_file_torchvision_caches():
    saved = torch.load(fake_weights("vgg16"), weights_only=True)
    net = build("vgg16").net
    torch.testing.assert_close(net.features[28].weight, saved["features.28.weight"])
    torch.testing.assert_close(net.classifier[0].weight, saved["classifier.0.weight"])
    assert net.classifier[-1].out_features == 10
    del saved, net


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


@pytest.mark.slow
@pytest.mark.parametrize("name", ["alexnet", "vgg16"])
def test_smoke_run_loads_the_cached_weights_on_the_worker_and_keeps_features_frozen(smoke_run, tmp_path, name):
    saved = torch.load(fake_weights(name), weights_only=True)
    result = smoke_run(name)
    assert result["config"]["weights"] == "imagenet" and result["config"]["freeze_features"] is True
    assert math.isfinite(result["history"][-1]["train_loss"]) and 0 <= result["test_accuracy"] <= 1
    # The worker's last checkpoint: features are the file's tensors untouched, fc6 trained away from them.
    # (Fake features are random, so accuracy proves nothing here; real ImageNet features would learn.)
    (checkpoint,) = (tmp_path / "run").rglob("checkpoint.pt")
    trained = torch.load(checkpoint, weights_only=False, mmap=True)["model"]  # mmap: it holds AdamW's state too
    torch.testing.assert_close(trained["net.features.0.weight"], saved["features.0.weight"])
    torch.testing.assert_close(trained["net.features.10.weight"], saved["features.10.weight"])
    fc6 = {"alexnet": "classifier.1.weight", "vgg16": "classifier.0.weight"}[name]
    assert not torch.equal(trained[f"net.{fc6}"], saved[fc6])
