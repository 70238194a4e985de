"""Presets: how much data and how many epochs a run uses, and each model's sensible defaults.

Data only. `smoke` proves the plumbing in seconds, `quick` gives a meaningful ranking in a minute or two per
model on a 2-core CPU, `full` trains on everything for the numbers we publish.
"""

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
