"""ResNet-18 with a grey 3x3 stem: from scratch, from (fake) ImageNet weights, its lr groups, and a smoke run."""

import math

import pytest
import torch
import torch.nn.functional as F

import models
from models.resnet import grey_stem
from tests.local_session import train_locally
from tests.weights import fake_weights


def resnet(**overrides) -> torch.nn.Module:
    return models.build("resnet18", {**models.defaults("resnet18"), **overrides})


@pytest.fixture(scope="session")
def saved() -> dict[str, torch.Tensor]:
    """The fake ImageNet state dict, written once per session where torch.hub looks for it."""
    return torch.load(fake_weights("resnet18"), weights_only=True)


def test_default_is_from_scratch_with_a_stride_1_grey_stem():
    model = resnet()
    net = model.net
    assert (net.conv1.in_channels, net.conv1.kernel_size, net.conv1.stride) == (1, (3, 3), (1, 1))
    assert isinstance(net.maxpool, torch.nn.Identity)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    fresh, pretrained = model.param_groups(0.1)
    assert fresh["lr"] == 0.1 and len(fresh["params"]) == len(list(model.parameters())) and not pretrained["params"]


def test_grey_stem_sums_rgb_and_keeps_the_centre_3x3():
    rgb = torch.randn(64, 3, 7, 7)
    stem = grey_stem(rgb)
    assert stem.shape == (64, 1, 3, 3)
    torch.testing.assert_close(stem[:, 0], rgb[:, 0, 2:5, 2:5] + rgb[:, 1, 2:5, 2:5] + rgb[:, 2, 2:5, 2:5])
    # Why the sum: on a grey image the grey kernel answers as the (cropped) RGB kernel on that image in 3 channels.
    grey = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(F.conv2d(grey, stem, padding=1),
                               F.conv2d(grey.expand(-1, 3, -1, -1), rgb[..., 2:5, 2:5], padding=1),
                               rtol=1e-4, atol=1e-4)


def test_imagenet_weights_load_with_the_converted_stem_and_a_new_head(saved):
    model = resnet(weights="imagenet")
    net = model.net
    torch.testing.assert_close(net.conv1.weight, saved["conv1.weight"].sum(1, keepdim=True)[..., 2:5, 2:5])
    torch.testing.assert_close(net.layer3[1].conv2.weight, saved["layer3.1.conv2.weight"])
    torch.testing.assert_close(net.layer4[0].downsample[1].weight, saved["layer4.0.downsample.1.weight"])
    assert net.fc.out_features == 10 and saved["fc.weight"].shape[0] == 1000
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_pretrained_layers_learn_at_a_scaled_rate_the_stem_and_head_at_full_rate(saved):
    model = resnet(weights="imagenet", backbone_lr_scale=0.25)
    fresh, pretrained = model.param_groups(0.1)
    assert fresh["lr"] == 0.1 and pretrained["lr"] == pytest.approx(0.025)
    names = {id(p): name for name, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in fresh["params"]) == [
        "net.bn1.bias", "net.bn1.weight", "net.conv1.weight", "net.fc.bias", "net.fc.weight"]
    assert len(fresh["params"]) + len(pretrained["params"]) == len(names)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"backbone_lr_scale": -0.1}, "backbone_lr_scale must be in"),
    ({"backbone_lr_scale": 1.5}, "backbone_lr_scale must be in"),
    ({"weights": "imagenet21k"}, "weights='imagenet21k' is not one of none, imagenet"),
])
def test_invalid_configs_are_rejected(overrides, message):
    with pytest.raises(models.ConfigError, match=message):
        resnet(**overrides)


@pytest.mark.slow  # ~25 s: 32 steps of ResNet-18 on 2 cores
def test_resnet18_smoke_run_learns(mnist, tmp_path):
    result = train_locally("resnet18", mnist, tmp_path)
    assert result["history"][-1]["train_loss"] < 0.8 * math.log(10)
    assert result["test_accuracy"] > 0.3
    assert result["params"] == 11_172_810  # torchvision's 11.69M less the 1000-way head and the RGB 7x7 stem
