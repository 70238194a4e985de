"""A configuration that passes validation trains (issue 25, item 12): from every search space (tune/sweep/spaces.py),
its low and high corners (every choice's first and last value, every range's ends: the smallest model a space allows and
the one whose shapes shrink most) and a random draw with a fixed seed, each passed through a trial's own validation
(tune/sweep/tuner.py trial_config), built, and trained for one step by the loop's own parts without Ray: the epoch's
share of rank 0 of one or of two data-parallel ranks (jobs/engine/data/sharding.py), cut into batches as the loop cuts
it (jobs/engine/data/batches.py), with a remainder of one image. The issue's own config goes through the whole loop
(tests/local_session.py).

Small on purpose: a few images, vgg16 and alexnet with random weights (no ImageNet file read), no checkpoint of
the big models written (what made a whole loop per config cost ~15 s for vgg16).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import models
from jobs.engine import config as run_config
from jobs.engine.data.batches import MIN_BATCH, batch_bounds, full_and_tail, steps_per_epoch
from jobs.engine.data.mnist import limit
from jobs.engine.data.sharding import rank_slice
from jobs.engine.errors import UsageError
from jobs.engine.tasks import make_task
from jobs.engine.train.epoch import place, run_epoch
from jobs.engine.train.loop import check_parts, run_loop
from jobs.engine.train.optim import make_optimizer, make_schedule, param_groups
from jobs.engine.train.prepare import LoopRequest
from tests.local_session import LocalSession
from tune.sweep.search import param_space
from tune.sweep.spaces import SPACES, candidate_values

SEED = 0
PER_RANK = 8  # training images (canvases for the detector) a rank gets: one batch of 7 and a remainder of one
WEIGHTS = {"vgg16": {"weights": "none"}, "alexnet": {"weights": "none"}}
CPU = torch.device("cpu")


def corners_and_draw(model: str) -> list[dict]:
    """The space's low corner, its high corner and one random draw (Ray Tune's own domains, seeded)."""
    low, high = {}, {}
    for key, entry in SPACES[model].items():
        kind = next(k for k in entry if k != "grid")
        values = candidate_values({kind: entry[kind]})  # a choice's values, or a range's two ends
        low[key], high[key] = values[0], values[-1]
    rng = np.random.default_rng(SEED + len(model))
    drawn = {key: domain.sample(random_state=rng) for key, domain in param_space(model, "random").items()}
    return [low, high, {k: v.item() if hasattr(v, "item") else v for k, v in drawn.items()}]


class Rank0Of(LocalSession):
    """Rank 0 of WORLD ranks: the loop takes its 1/WORLD share of each epoch (jobs/engine/data/sharding.py) and trains
    it as that rank would under DDP, where each rank's BatchNorm sees only its own share."""

    def __init__(self, folder, world: int) -> None:
        super().__init__(folder)
        self.world = world


# Spaces whose keys change a model's shapes (kernel, channels, patches, depth, anchors, backbone): both corners and
# a draw. The others (resnet18's and the fine-tuned models': learning rates, decay, batch size, freezing) change
# no shape, and a step of vgg16 costs seconds: their draw only. Each config once, on one rank or as rank 0 of two
# in turn; cnn's (the issue's architecture) under both.
SHAPED = ("cnn", "vit", "faster_rcnn")
# vgg16's step (138M weights at 32x32) is `make test`'s only, not the between-edits tier's.
CASES = [pytest.param(model, i, world, marks=[pytest.mark.slow] if model == "vgg16" else [])
         for model in models.model_names() for i in (range(3) if model in SHAPED else [2])
         for world in (1, 2) if (i + world) % 2 == 1 or model == "cnn"]


@pytest.mark.parametrize(("model", "which", "world"), CASES)
def test_every_space_config_trains_a_step_with_a_remainder_of_one(model, which, world, mnist):
    sampled = corners_and_draw(model)[which]
    config = run_config.check(model, run_config.with_values(run_config.preset_config(model, "smoke"), sampled))
    # train_limit sets the detector's canvases too (digits_per_canvas images each): PER_RANK of them per rank.
    images = PER_RANK * world * (round(config["digits_per_canvas"]) if "digits_per_canvas" in config else 1)
    config = run_config.check(model, {**config, **WEIGHTS.get(model, {}), "train_limit": images,
                                      "batch_size": PER_RANK - 1})
    run_config.check_shares(config, world)
    torch.manual_seed(SEED)
    task = make_task(models.spec(model).task, limit(mnist, images, 8, 8), config, CPU)
    indices = rank_slice(task.train_size, SEED, 0, 0, world)  # rank 0's share, as the loop takes it
    assert len(indices) % config["batch_size"] == 1  # a remainder of one image
    model_ = place(models.build(model, config), CPU, config).train()
    optimizer = make_optimizer(param_groups(model_, config), config, CPU)
    loss_sum = run_epoch(model_, task, optimizer, make_schedule(optimizer, config, 1), indices,
                         config["batch_size"], config["grad_clip"])
    assert torch.isfinite(loss_sum), (sampled, float(loss_sum))


def test_the_issue_config_trains_its_remainder_of_one(mnist, tmp_path):
    # The issue's config: stride 2 without pooling takes 28x28 to a 1x1 map in the third block; its 1025 = 8 x 128 + 1
    # images trained 8 batches, then died on a batch of one. The same cut, smaller: 9 = 2 x 4 + 1, whole loop.
    config = run_config.resolve("cnn", "smoke", ["channels=16,32,64", "stride=2", "pooling=none", "train_limit=9",
                                                 "batch_size=4", "val_limit=8", "evaluate_test=false"])
    session = LocalSession(tmp_path)
    run_loop(LoopRequest("cnn", config, mnist), session)
    # The epoch's report, then the finished run's (its summary, without a test evaluation here).
    assert len(session.reports) == 2 and np.isfinite(session.reports[0]["train_loss"])


@pytest.mark.parametrize(("size", "batch"), [(7, 3), (1025, 128), (9, 4), (4, 3), (3, 3), (2, 5), (1, 4), (0, 3),
                                             (10, 4), (257, 2)])
def test_every_sample_once_and_no_batch_below_the_minimum(size, batch):
    bounds = batch_bounds(size, batch)
    assert [i for b, e in bounds for i in range(b, e)] == list(range(size))  # every sample once, in order
    assert all(e - b >= MIN_BATCH for b, e in bounds) or size < MIN_BATCH
    assert steps_per_epoch(size, batch) == len(bounds)
    full, tail = full_and_tail(size, batch)  # the captured step's cut: the same batches
    assert [batch] * full + ([tail] if tail else []) == [e - b for b, e in bounds]
    for checks in (1, 2, 3, 100):  # the validation parts cut on the same boundaries
        parts = check_parts(size, batch, checks)
        assert {e for _, e in parts} <= {e for _, e in bounds} | {0}


@pytest.mark.parametrize(("overrides", "workers", "message"), [
    (["batch_size=1"], 1, "batch_size=1: batch_size must be >= 2"),
    (["train_limit=1"], 1, "train_limit=1: 1 training image leaves it fewer than 2"),
    (["train_limit=3"], 2, "train_limit=3: 3 training images over 2 workers leave a worker fewer than 2"),
    (["kernel_size=7", "padding=valid", "channels=8,8,8"], 1, "shrink 28x28 to nothing"),
])
def test_shapes_and_shares_no_model_can_take_are_one_usage_error(overrides, workers, message):
    with pytest.raises(UsageError, match=message):
        run_config.check_shares(run_config.resolve("cnn", "smoke", overrides), workers)


def test_a_share_of_one_per_rank_stops_before_any_step(mnist, tmp_path):
    # A caller that skipped config.check_shares: the loop refuses before training, not after an epoch.
    config = {**run_config.resolve("cnn", "smoke", ["val_limit=8", "evaluate_test=false"]), "train_limit": 3}
    with pytest.raises(ValueError, match="3 training images over 2 worker"):
        run_loop(LoopRequest("cnn", config, mnist), Rank0Of(tmp_path, 2))
