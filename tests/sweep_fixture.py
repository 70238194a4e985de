"""A synthetic but realistic sweep output folder, so the report can be tested without training anything.

`write_sweep(folder, scenario)` writes sweep.json, trials.json and final/<model>/seed<k>/result.json in the
schema the sweep produces. Predictions are made wrong on chosen images, so accuracies, confusion matrices and
per-class F1 are consistent with each other and with `test_labels`, the way real results are.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

N_TEST = 1000
FAILED_REASON = "ImageNet weights for alexnet are not available offline (torch hub cache is empty)"

# Per model: mean test accuracy, train seconds, parameters, images/s, peak MB, epochs.
SCENARIOS: dict[str, dict[str, dict[str, Any]]] = {
    # resnet18 is clearly best; cnn is the cheap runner-up; the gap between them is significant.
    "clear_winner": {
        "cnn": {"acc": 0.975, "time": 14.0, "params": 421_642, "ips": 4300.0, "mem": 310.0, "epochs": 3},
        "vit": {"acc": 0.955, "time": 61.0, "params": 1_204_490, "ips": 980.0, "mem": 520.0, "epochs": 3},
        "resnet18": {"acc": 0.992, "time": 152.0, "params": 11_175_370, "ips": 390.0, "mem": 1450.0, "epochs": 3},
        "alexnet": None,
        "faster_rcnn": {"acc": 0.962, "time": 410.0, "params": 41_299_161, "ips": 45.0, "mem": 3900.0, "epochs": 2,
                        "map": (0.943, 0.701)},
    },
    # cnn edges resnet18 by one image: not significant, and cnn is both best and cheapest.
    "close_call": {
        "cnn": {"acc": 0.986, "time": 14.0, "params": 421_642, "ips": 4300.0, "mem": 310.0, "epochs": 3},
        "vit": {"acc": 0.955, "time": 61.0, "params": 1_204_490, "ips": 980.0, "mem": 520.0, "epochs": 3},
        "resnet18": {"acc": 0.985, "time": 152.0, "params": 11_175_370, "ips": 390.0, "mem": 1450.0, "epochs": 3},
        "alexnet": None,
    },
    # resnet18 is best, but cnn is within half a point for a tenth of the training time; nothing failed.
    "cheap_runner_up": {
        "cnn": {"acc": 0.988, "time": 14.0, "params": 421_642, "ips": 4300.0, "mem": 310.0, "epochs": 3},
        "resnet18": {"acc": 0.991, "time": 152.0, "params": 11_175_370, "ips": 390.0, "mem": 1450.0, "epochs": 3},
    },
}


def write_sweep(folder: Path, scenario: str = "clear_winner", seeds: int = 3, samples: int = 4) -> Path:
    specs = SCENARIOS[scenario]
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 10, N_TEST)
    # Images that are hard for every model, so error sets overlap the way real ones do.
    hard = rng.permutation(N_TEST)
    folder.mkdir(parents=True, exist_ok=True)
    trials: list[dict[str, Any]] = []
    status: dict[str, dict[str, Any]] = {}
    for index, (model, spec) in enumerate(specs.items()):
        model_trials = _trials(model, spec, samples, np.random.default_rng(100 + index))
        trials += model_trials
        status[model] = _status(spec, model_trials)
        if spec is None:
            continue
        for seed in range(seeds):
            result = _result(model, spec, seed, labels, hard, status[model]["best_config"],
                             np.random.default_rng(1000 * index + seed))
            run = folder / "final" / model / f"seed{seed}"
            run.mkdir(parents=True, exist_ok=True)
            (run / "result.json").write_text(json.dumps(result, indent=1))
    sweep = {"preset": "quick", "models": list(specs), "search": "optuna", "samples": samples, "seeds": seeds,
             "started": "2025-11-23T16:00:00+00:00", "finished": "2025-11-23T16:42:10+00:00", "wall_time_s": 2530.4,
             "env": {"torch": "2.14.1", "ray": "2.60.0", "device": "cpu", "python": "3.11.9", "workers": 1},
             "status": status}
    (folder / "sweep.json").write_text(json.dumps(sweep, indent=1))
    (folder / "trials.json").write_text(json.dumps(trials, indent=1))
    return folder


def _trials(model: str, spec: dict | None, samples: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    out = []
    for i in range(samples):
        config = {"lr": float(10 ** rng.uniform(-3.5, -2)), "batch_size": int(rng.choice([64, 128])),
                  "weight_decay": float(10 ** rng.uniform(-5, -3))}
        trial = {"model": model, "trial_id": f"{model}_{i:05d}", "config": config}
        if spec is None:
            out.append(trial | {"status": "failed", "error": FAILED_REASON, "val_accuracy": None, "epochs_run": 0,
                                "history": []})
            continue
        # Trial 1 is the best; the last one is stopped early by ASHA; vit loses one trial to a crash.
        if model == "vit" and i == 2:
            out.append(trial | {"status": "failed", "error": "RayTaskError: worker died (OOM)", "val_accuracy": None,
                                "epochs_run": 0, "history": []})
            continue
        top = spec["acc"] + 0.002 - (0 if i == 1 else 0.004 * (i + 1))
        epochs = 1 if i == samples - 1 else spec["epochs"]
        history = [_epoch(e, spec, top, epochs) for e in range(1, epochs + 1)]
        out.append(trial | {"status": "stopped" if epochs < spec["epochs"] else "ok", "error": None,
                            "val_accuracy": max(h["val_accuracy"] for h in history), "epochs_run": epochs,
                            "history": history})
    return out


def _epoch(epoch: int, spec: dict, top: float, epochs: int) -> dict[str, Any]:
    acc = top - (top - 0.6) * math.exp(-1.6 * epoch) if epochs > 1 else top - 0.05
    row = {"epoch": epoch, "train_loss": round(1.2 * math.exp(-epoch) + 0.02, 4),
           "val_loss": round((1 - acc) * 3 + 0.01, 4), "val_accuracy": round(acc, 4),
           "val_f1_macro": round(acc - 0.001, 4), "epoch_time_s": spec["time"] / spec["epochs"],
           "images_per_s": spec["ips"]}
    if "map" in spec:
        row |= {"map_50": round(spec["map"][0] * acc, 4), "map": round(spec["map"][1] * acc, 4)}
    return row


def _status(spec: dict | None, model_trials: list[dict]) -> dict[str, Any]:
    failed = sum(t["status"] == "failed" for t in model_trials)
    if spec is None:
        return {"status": "failed", "reason": FAILED_REASON, "best_config": None, "best_trial_id": None,
                "best_val_accuracy": None, "trials": len(model_trials), "failed_trials": failed}
    best = max((t for t in model_trials if t["val_accuracy"] is not None), key=lambda t: t["val_accuracy"])
    return {"status": "ok", "reason": None, "best_config": best["config"], "best_trial_id": best["trial_id"],
            "best_val_accuracy": best["val_accuracy"], "trials": len(model_trials), "failed_trials": failed}


def _result(model: str, spec: dict, seed: int, labels: np.ndarray, hard: np.ndarray, config: dict,
            rng: np.random.Generator) -> dict[str, Any]:
    n = len(labels)
    errors = round((1 - spec["acc"]) * n) + (0, 1, -1)[seed % 3]
    # Mostly the shared hard images, some of the model's own, so two models disagree on a realistic few.
    own = int(errors * 0.4)
    wrong = np.concatenate([hard[: errors - own], rng.choice(hard[errors:], own, replace=False)])
    predictions = labels.copy()
    predictions[wrong] = (labels[wrong] + rng.integers(1, 10, len(wrong))) % 10
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (labels, predictions), 1)
    tp = np.diag(confusion)
    f1 = 2 * tp / np.maximum(confusion.sum(0) + confusion.sum(1), 1)
    support = confusion.sum(1)
    accuracy = float((predictions == labels).mean())
    epochs = spec["epochs"]
    history = [_epoch(e, spec, spec["acc"] + 0.002, epochs) for e in range(1, epochs + 1)]
    jitter = 1 + 0.03 * (seed - 1)
    result = {
        "model": model, "config": config, "test_accuracy": accuracy, "test_f1_macro": float(f1.mean()),
        "test_f1_weighted": float((f1 * support).sum() / support.sum()), "test_loss": round((1 - accuracy) * 2.7, 4),
        "train_time_s": spec["time"] * jitter, "wall_time_s": spec["time"] * jitter + 9.5, "epochs": epochs,
        "params": spec["params"], "images_per_s": spec["ips"] / jitter, "peak_memory_mb": spec["mem"],
        "history": history, "confusion_matrix": confusion.tolist(), "per_class_f1": f1.tolist(),
        "test_predictions": predictions.tolist(), "test_labels": labels.tolist(),
        "val_accuracy": history[-1]["val_accuracy"], "best_epoch": epochs - seed % 2,
        "env": {"torch": "2.14.1", "ray": "2.60.0", "device": "cpu", "workers": 1, "host": "fixture"},
    }
    if "map" in spec:
        result |= {"test_map_50": spec["map"][0] + 0.002 * seed, "test_map": spec["map"][1] + 0.003 * seed}
    return result
