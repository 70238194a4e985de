"""The data each stage of a sweep sees: search trials no test images, the final retrain train + validation."""

import torch

from jobs.engine import config as run_config
from jobs.engine.data.mnist import Mnist
from jobs.engine.train.prepare import worker_data
from tune.sweep.orchestration import without_test


def tiny() -> Mnist:
    def split(n: int, value: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.full((n, 28, 28), value, dtype=torch.uint8), torch.full((n,), value % 10, dtype=torch.int64)

    return Mnist(*split(6, 1), *split(4, 2), *split(3, 3))


def test_search_trials_get_no_test_images():
    data = without_test(tiny())
    assert data.sizes() == {"train": 6, "val": 4, "test": 0}
    assert tiny().sizes()["test"] == 3  # the retrain's copy is whole


def test_the_final_retrain_trains_on_train_and_validation():
    config = run_config.resolve("cnn", "smoke", ["train_on_val=true"])
    data = worker_data(tiny(), config)
    assert data.sizes() == {"train": 10, "val": 4, "test": 3}
    assert torch.equal(data.train_images[6:], tiny().val_images)  # the validation images, appended
    plain = worker_data(tiny(), run_config.resolve("cnn", "smoke", []))
    assert plain.sizes()["train"] == 6
