"""Search spaces, one per architecture, as data a person can read and change.

Each entry is `key: {kind: args}` with kind one of choice, uniform, loguniform, randint (random and Optuna
search), plus an optional `grid` list that grid search uses instead (default: the choice list). Keys are config
keys of the model or the loop (see `python -m jobs.train --set`). Tuple-valued keys (cnn channels) are
written as strings such as "16,32" so that every search algorithm can handle them.

Invalid combinations are not in the space: every ViT width below is a multiple of 8 and so divisible by every
head count offered, and every patch size divides 28.
"""

from __future__ import annotations

SEARCHES = ("random", "grid", "optuna")
KINDS = ("choice", "uniform", "loguniform", "randint")

SPACES: dict[str, dict[str, dict]] = {
    "cnn": {
        "kernel_size": {"choice": [3, 5, 7]},
        "dropout": {"uniform": [0.0, 0.5], "grid": [0.1, 0.3]},
        "channels": {"choice": ["16,32", "32,64", "32,64,128"]},
        "lr": {"loguniform": [1e-3, 1e-2], "grid": [2e-3, 5e-3]},
        "batch_size": {"choice": [64, 128, 256]},
    },
    "vit": {
        "patch_size": {"choice": [4, 7, 14]},
        "heads": {"choice": [2, 4, 8]},
        "depth": {"randint": [2, 9], "grid": [2, 4, 6]},
        "dim": {"choice": [64, 96, 128, 192]},
        "mlp_ratio": {"choice": [2.0, 3.0, 4.0]},
        "lr": {"loguniform": [5e-4, 5e-3], "grid": [1e-3, 3e-3]},
        "weight_decay": {"loguniform": [1e-3, 1e-1], "grid": [0.01, 0.05]},
    },
    "resnet18": {
        "lr": {"loguniform": [5e-4, 1e-2], "grid": [1e-3, 3e-3]},
        "weight_decay": {"loguniform": [1e-4, 1e-1], "grid": [1e-3, 5e-2]},
        "batch_size": {"choice": [64, 128, 256]},
    },
    "vgg16": {
        "freeze_features": {"choice": [True, False]},
        "lr": {"loguniform": [1e-4, 3e-3], "grid": [3e-4, 1e-3]},
        "backbone_lr_scale": {"loguniform": [0.01, 0.3], "grid": [0.03, 0.1]},
    },
    "alexnet": {
        "freeze_features": {"choice": [True, False]},
        "lr": {"loguniform": [1e-4, 3e-3], "grid": [3e-4, 1e-3]},
        "backbone_lr_scale": {"loguniform": [0.01, 0.3], "grid": [0.03, 0.1]},
    },
    "faster_rcnn": {
        "lr": {"loguniform": [5e-4, 1e-2], "grid": [1e-3, 3e-3]},
        "anchor_sizes": {"choice": ["12,20,32", "16,24,32,48", "8,16,32"]},
        "backbone": {"choice": ["small_cnn", "resnet18_fpn", "mobilenet_v3_fpn"], "grid": ["small_cnn"]},
    },
}


def space_of(model: str, overrides: dict[str, dict] | None = None) -> dict[str, dict]:
    """The model's space from tune/sweep/spaces.py, or the one a `--space` file gives for it."""
    return (overrides or {}).get(model, SPACES[model])


def check_space(space: dict[str, dict], where: str) -> None:
    """A space read from a `--space` file must use the kinds above with well-formed arguments.

    Raises ValueError naming the bad key; whether the values suit the model is answered by
    tune/sweep/checks.py `check_space_values`, through the declared config.
    """
    if not isinstance(space, dict):
        raise ValueError(f"{where}: expected {{key: {{kind: args}}}}, got {type(space).__name__}")
    for key, entry in space.items():
        kinds = [k for k in entry if k != "grid"] if isinstance(entry, dict) else []
        if len(kinds) != 1 or kinds[0] not in KINDS:
            raise ValueError(f"{where}: {key}: expected one of {', '.join(KINDS)} (and optionally grid)")
        kind, args = kinds[0], entry[kinds[0]]
        if kind == "choice" or "grid" in entry:
            for name, values in (("choice", args if kind == "choice" else None), ("grid", entry.get("grid"))):
                if values is not None and (not isinstance(values, list) or not values):
                    raise ValueError(f"{where}: {key}: {name} needs a non-empty list of values")
        if kind == "choice":
            continue
        numbers = isinstance(args, list) and len(args) == 2 and all(
            isinstance(a, int | float) and not isinstance(a, bool) for a in args)
        if not numbers or not args[0] < args[1]:
            raise ValueError(f"{where}: {key}: {kind} needs [low, high] with low < high, got {args!r}")
        if kind == "loguniform" and args[0] <= 0:
            raise ValueError(f"{where}: {key}: loguniform needs low > 0, got {args!r}")
        if kind == "randint" and not all(isinstance(a, int) for a in args):
            raise ValueError(f"{where}: {key}: randint needs integer bounds, got {args!r}")


def candidate_values(entry: dict) -> list:
    """Every value a search can draw from ENTRY, or both ends of a range (randint's high is exclusive)."""
    kind = next(k for k in entry if k != "grid")
    args = entry[kind]
    values = list(args) if kind == "choice" else [args[0], args[1] - 1] if kind == "randint" else list(args)
    return [*values, *entry.get("grid", [])]
