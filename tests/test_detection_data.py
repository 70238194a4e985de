"""MNIST detection canvases: deterministic, 1-3 digits, tight non-overlapping boxes, each split from its own digits."""

import pytest
import torch

from jobs.engine.data.mnist import Mnist
from jobs.engine.tasks.detection_data import canvas_count, centred, make_canvases, split_canvases

CONFIG = {"canvas_size": 84, "max_digits": 3, "scale_min": 0.8, "scale_max": 1.6, "digits_per_canvas": 2.0,
          "seed": 0}


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist.train_images[:600], mnist.train_labels[:600]


@pytest.fixture(scope="module")
def canvases(digits):
    return make_canvases(*digits, count=150, seed=3)


def test_same_seed_same_canvases_other_seed_other_canvases(digits, canvases):
    again = make_canvases(*digits, count=150, seed=3)
    assert torch.equal(again.images, canvases.images) and torch.equal(again.boxes, canvases.boxes)
    assert torch.equal(again.labels, canvases.labels)
    assert not torch.equal(make_canvases(*digits, count=150, seed=4).images, canvases.images)


def test_one_to_three_digits_with_labels_1_to_10(canvases):
    counts = (canvases.labels > 0).sum(1)
    assert counts.min() >= 1 and counts.max() <= 3
    assert set(counts.tolist()) == {1, 2, 3}  # all three counts occur in 150 canvases
    present = canvases.labels[canvases.labels > 0]
    assert present.min() >= 1 and present.max() <= 10 and len(present.unique()) == 10


def test_labels_are_the_source_digits_plus_one(digits, canvases):
    _, labels = digits
    used = canvases.labels > 0
    assert torch.equal(canvases.labels[used], labels[canvases.sources[used]] + 1)
    assert (canvases.sources[~used] == -1).all()


def test_boxes_inside_canvas_and_apart(canvases):
    for boxes, labels in zip(canvases.boxes, canvases.labels, strict=True):
        boxes = boxes[labels > 0]
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 84).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                overlap_x = min(a[2], b[2]) - max(a[0], b[0])
                overlap_y = min(a[3], b[3]) - max(a[1], b[1])
                assert overlap_x <= 0 or overlap_y <= 0


def test_boxes_are_tight_to_the_ink(canvases):
    for image, boxes, labels in zip(canvases.images, canvases.boxes, canvases.labels, strict=True):
        covered = torch.zeros_like(image, dtype=torch.bool)
        for x1, y1, x2, y2 in boxes[labels > 0].long().tolist():
            ink = image[y1:y2, x1:x2] > 0
            # Every edge row and column of the box holds ink: none could be shrunk.
            assert ink[0].any() and ink[-1].any() and ink[:, 0].any() and ink[:, -1].any()
            covered[y1:y2, x1:x2] = True
        assert not (image[~covered] > 0).any()  # no ink outside the boxes


def test_scales_follow_the_config(digits):
    small = make_canvases(*digits, count=100, scale_min=0.5, scale_max=0.5, seed=1)
    large = make_canvases(*digits, count=100, scale_min=1.6, scale_max=1.6, seed=1)
    height = lambda c: (c.boxes[..., 3] - c.boxes[..., 1])[c.labels > 0].max()  # noqa: E731
    assert height(small) <= 14 < height(large) <= 45


def test_each_split_is_made_from_its_own_digits():
    # Three splits whose digits differ in ink value and label: every canvas must show only its split's.
    def split(value: int, label: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.zeros(n, 28, 28, dtype=torch.uint8)
        images[:, 6:22, 10:18] = value
        return images, torch.full((n,), label)

    data = Mnist(*split(200, 1, 40), *split(100, 2, 20), *split(50, 3, 10))
    for name, value, label, sources in (("train", 200, 2, 40), ("val", 100, 3, 20), ("test", 50, 4, 10)):
        made = split_canvases(data, name, CONFIG)
        assert len(made) == canvas_count(sources, 2.0) == sources // 2
        assert made.images.max() == value  # interpolation keeps a flat block's inside at its value
        assert set(made.labels[made.labels > 0].tolist()) == {label}
        assert made.sources.max() < sources


def test_evaluation_canvases_do_not_follow_the_run_seed(mnist):
    data = Mnist(mnist.train_images[:100], mnist.train_labels[:100], mnist.val_images[:100],
                 mnist.val_labels[:100], mnist.test_images[:100], mnist.test_labels[:100])
    other = {**CONFIG, "seed": 5}
    assert torch.equal(split_canvases(data, "val", CONFIG).images, split_canvases(data, "val", other).images)
    assert not torch.equal(split_canvases(data, "train", CONFIG).images,
                           split_canvases(data, "train", other).images)


def test_centred_pastes_the_plain_digit_at_the_centre(digits):
    images, _ = digits
    out = centred(images[:4], 84)
    assert out.shape == (4, 84, 84) and torch.equal(out[:, 28:56, 28:56], images[:4])
    assert out.sum() == images[:4].sum()
