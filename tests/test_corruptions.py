"""jobs/engine/data/corruptions.py: deterministic per seed, and each corruption does what its name says."""

import pytest
import torch

from jobs.engine.data import corruptions as c

RANDOM = ["shift", "rotate", "scale", "gaussian_noise", "impulse_noise"]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def digits(n=8, seed=0):
    """Digit-like test images: a bright off-centre bar and blob on black, plus a little texture."""
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    images[:, 6:22, 12:15] = 255
    images[:, 8:12, 15:20] = 200
    return images | torch.randint(0, 40, (n, 28, 28), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(c.CORRUPTIONS))
def test_same_seed_same_pixels_and_shape_dtype_device_kept(name, device):
    images = digits().to(device)
    first = c.corrupt(images, name, seed=3)
    assert first.dtype == torch.uint8 and first.shape == images.shape and first.device == images.device
    assert torch.equal(first, c.corrupt(images.clone(), name, seed=3))
    assert not torch.equal(first, images)  # every corruption changes something
    if name in RANDOM:
        assert not torch.equal(first, c.corrupt(images, name, seed=4))


def test_rotation_by_quarter_turns_equals_rot90():
    images = digits()
    for quarter_turns in (1, 2, 3, -1):
        expected = torch.rot90(images, quarter_turns, dims=(-2, -1))
        assert torch.equal(c.rotate(images, 0, degrees=90 * quarter_turns), expected)
    assert torch.equal(c.rotate(images, 0, degrees=0), images)


def test_random_rotation_stays_within_its_range():
    # An image with one bright pixel at radius 10 right of centre: after a turn of at most 30 degrees its light
    # stays in the right-hand part of the image, never above or below the centre by more than sin(30) x 10 + 1.
    image = torch.zeros(64, 28, 28, dtype=torch.uint8)
    image[:, 13:15, 23:25] = 255
    turned = c.rotate(image, seed=1).float()
    rows, cols = torch.arange(28.0).view(1, 28, 1), torch.arange(28.0).view(1, 1, 28)
    mass = turned.sum(dim=(1, 2))
    row = (turned * rows).sum(dim=(1, 2)) / mass
    col = (turned * cols).sum(dim=(1, 2)) / mass
    assert ((row - 13.5).abs() <= 6.5).all() and (col >= 13.5 + 10 * 0.85 - 1).all()
    assert (row - 13.5).abs().max() > 2  # and it did turn some images a fair way


def test_shift_equals_roll_with_zero_fill():
    images = digits()
    right = torch.roll(images, 3, dims=-1)
    right[:, :, :3] = 0
    assert torch.equal(c.shift(images, 0, pixels=(0, 3)), right)
    up_left = torch.roll(images, (-2, -1), dims=(-2, -1))
    up_left[:, -2:, :] = 0
    up_left[:, :, -1:] = 0
    assert torch.equal(c.shift(images, 0, pixels=(-2, -1)), up_left)


def test_random_shift_moves_each_image_by_whole_pixels_within_three():
    images = digits(16)
    moved = c.shift(images, seed=5)
    for original, out in zip(images, moved, strict=True):
        matches = []
        for down in range(-3, 4):
            for right in range(-3, 4):
                if torch.equal(c.shift(original[None], 0, pixels=(down, right))[0], out):
                    matches.append((down, right))
        assert matches, "each image is one whole-pixel shift of its original"


def test_scale_one_is_identity_and_zoom_out_shrinks_a_white_square():
    images = digits()
    assert torch.equal(c.scale(images, 0, factor=1.0), images)
    white = torch.full((1, 28, 28), 255, dtype=torch.uint8)
    half = c.scale(white, 0, factor=0.5)[0]
    assert (half[7:21, 7:21] == 255).all() and (half[:6] == 0).all() and (half[:, 22:] == 0).all()


def test_noise_has_its_stated_spread_and_impulse_its_stated_fraction():
    grey = torch.full((50, 28, 28), 128, dtype=torch.uint8)
    # sigma 0.1 (25.5 grey levels) so that clipping at 0 and 255, five sigmas away, does not narrow the spread.
    noisy = c.gaussian_noise(grey, seed=0, sigma=0.1).float() - 128
    assert abs(noisy.mean().item()) < 0.5 and noisy.std().item() == pytest.approx(0.1 * 255, rel=0.02)
    assert torch.equal(c.gaussian_noise(grey, 0), c.gaussian_noise(grey, 0, sigma=c.NOISE_SIGMA))
    hit = c.impulse_noise(grey, seed=0)
    changed = hit != 128
    assert changed.float().mean().item() == pytest.approx(0.1, abs=0.01)
    assert set(hit[changed].unique().tolist()) == {0, 255}


def test_blur_spreads_a_point_symmetrically_and_keeps_the_light():
    point = torch.zeros(1, 28, 28, dtype=torch.uint8)
    point[0, 14, 14] = 255
    blurred = c.blur(point, 0)[0].float()
    assert blurred[14, 14] < 255 and blurred[14, 14] == blurred.max()
    assert torch.equal(blurred, blurred.flip(0).roll(1, 0)) and torch.equal(blurred, blurred.t())
    assert blurred.sum().item() == pytest.approx(255, abs=15)  # rounding each of ~49 pixels loses at most 0.5


def test_contrast_keeps_the_mean_and_shrinks_the_spread():
    images = digits()
    low = c.contrast(images, 0).float()
    assert (low.mean(dim=(1, 2)) - images.float().mean(dim=(1, 2))).abs().max() <= 0.5
    ratio = low.std(dim=(1, 2)) / images.float().std(dim=(1, 2))
    assert torch.allclose(ratio, torch.full_like(ratio, c.CONTRAST_FACTOR), atol=0.01)


def test_inversion_is_255_minus_x():
    images = digits()
    assert torch.equal(c.invert(images, 0), 255 - images)


def test_bad_input_and_unknown_name_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        c.shift(torch.zeros(2, 28, 28), 0)
    with pytest.raises(ValueError, match="uint8"):
        c.blur(torch.zeros(2, 32, 32, dtype=torch.uint8), 0)
    with pytest.raises(ValueError, match="known: shift"):
        c.corrupt(digits(), "fog", 0)
