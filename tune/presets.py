"""Presets: how much data and how many epochs a run uses, and each model's sensible defaults.

Data only. `smoke` proves the plumbing in seconds, `quick` gives a meaningful ranking in a minute or two per
model on a 2-core CPU, `full` trains on everything for the numbers we publish.
"""

# How a sweep spends each preset: trials per architecture, seeds of the final retrain, and what a trial
# trains on (a search needs a ranking, not the final number, so trials may see less data than the retrain).
SWEEPS: dict[str, dict] = {
    "smoke": {"samples": 2, "seeds": 1, "trial": {}},
    "quick": {"samples": 2, "seeds": 1, "trial": {"epochs": 1}},
    "full": {"samples": 12, "seeds": 3, "trial": {}},
}

# GPU share of one Train worker in a sweep trial: small models share a card so several trials run at once.
GPU_PER_TRIAL_WORKER: dict[str, float] = {
    "cnn": 0.25, "vit": 0.5, "resnet18": 0.5, "alexnet": 0.5, "vgg16": 1.0, "faster_rcnn": 1.0,
}

PRESETS: dict[str, dict] = {
    "smoke": {
        "loop": {"epochs": 1, "train_limit": 1024, "val_limit": 512, "test_limit": 1000, "batch_size": 64},
        "models": {},
    },
    "quick": {
        "loop": {"epochs": 2, "train_limit": 12_000, "val_limit": 2_000, "test_limit": 0},
        "models": {},
    },
    "full": {
        "loop": {"epochs": 10, "test_limit": 0},
        "models": {
            "cnn": {"epochs": 12, "lr": 3e-3},
        },
    },
}
