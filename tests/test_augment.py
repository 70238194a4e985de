"""Batched normalisation, augmentation and layout: what the loop feeds every model."""

import torch

import models
from jobs.augment import MEAN, STD, prepare_batch
from jobs.config import LOOP_DEFAULTS
from jobs.loop import place


def digits(n: int = 8) -> torch.Tensor:
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    images[:, 10:18, 12:16] = 255
    return images


def test_evaluation_batches_are_normalised_and_never_augmented():
    x = prepare_batch(digits(), train=False, shift_px=3, rotate_deg=30)
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32
    assert torch.allclose(x[0, 0, 0, 0], torch.tensor(-MEAN / STD))
    assert torch.allclose(x[0, 0, 12, 13], torch.tensor((1 - MEAN) / STD))


def test_augmentation_moves_ink_but_keeps_the_background_value():
    torch.manual_seed(0)
    plain = prepare_batch(digits(64), train=True)
    moved = prepare_batch(digits(64), train=True, shift_px=3, rotate_deg=20)
    assert torch.equal(plain, prepare_batch(digits(64), train=False))
    changed = (moved - plain).abs().flatten(1).amax(1) > 0.5
    assert changed.float().mean() > 0.9  # nearly every image was moved, each differently
    assert not torch.allclose(moved[0], moved[1])
    assert torch.allclose(moved[:, :, 0, 0], torch.tensor(-MEAN / STD), atol=1e-5)


def test_channels_last_changes_the_layout_not_the_numbers():
    torch.manual_seed(0)
    cfg = {**LOOP_DEFAULTS, **models.defaults("cnn")}
    nchw = place(models.build("cnn", cfg), torch.device("cpu"), {**cfg, "channels_last": False}).eval()
    nhwc = place(models.build("cnn", cfg), torch.device("cpu"), {**cfg, "channels_last": True}).eval()
    nhwc.load_state_dict(nchw.state_dict())
    conv = next(m for m in nhwc.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    batch = prepare_batch(digits(), train=False, channels_last=True)
    assert batch.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.allclose(nhwc(batch), nchw(prepare_batch(digits(), train=False)), atol=1e-4)
