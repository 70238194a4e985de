"""Batched normalisation, augmentation and layout: what the loop feeds every model."""

import torch
from torch import nn

import models
from jobs.engine.config import LOOP_DEFAULTS
from jobs.engine.data.augment import MEAN, STD, prepare_batch
from jobs.engine.data.mnist import Mnist
from jobs.engine.tasks.classification import ClassificationTask
from jobs.engine.train.epoch import place


def digits(n: int = 8) -> torch.Tensor:
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    images[:, 10:18, 12:16] = 255
    return images


def normalised(images: torch.Tensor) -> torch.Tensor:
    """What a model must see of uint8 images at evaluation: MNIST's mean and std applied by hand, nothing moved."""
    return ((images.float() / 255.0 - MEAN) / STD).unsqueeze(1)


def test_evaluation_batches_are_normalised_and_never_augmented():
    images = digits()
    x = prepare_batch(images, train=False, shift_px=3, rotate_deg=30)
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32
    assert torch.equal(x, normalised(images))  # every pixel: a moved digit differs somewhere, whatever the seed


class InputRecorder(nn.Module):
    """A stand-in classifier that keeps every batch it is shown."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return torch.zeros(len(x), 10)


def test_the_classification_task_evaluates_plain_images_even_when_training_augments():
    images = torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(300) % 10
    task = ClassificationTask(Mnist(images, labels, images, labels, images, labels),
                              {**LOOP_DEFAULTS, "augment": True, "shift_px": 3.0, "rotate_deg": 30.0,
                               "eval_batch_size": 128}, torch.device("cpu"))
    for split in ("val", "test"):
        model = InputRecorder()
        task.evaluate(model, split)
        assert [len(x) for x in model.seen] == [128, 128, 44]
        assert torch.equal(torch.cat(model.seen), normalised(images))


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
