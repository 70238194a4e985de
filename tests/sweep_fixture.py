"""A synthetic but realistic sweep output folder, so the report can be tested without training anything.

`write_sweep(folder, scenario)` writes sweep.json, trials.json and final/<model>/seed<k>/result.json in the
schema the sweep produces. Predictions are made wrong on chosen images, so accuracies, confusion matrices and
per-class F1 are consistent with each other and with `test_labels`, the way real results are.

Each final run also keeps its predictions.npz as jobs/engine/measure/final_evaluation.py writes it: labels and
predictions (those of result.json), probabilities whose arg-max is the prediction (ECE, NLL and Brier in
result.json are computed from them), the wrong images most confident first (synthetic seven-segment digits, the
same image for the same test index in every model), and for the detector a few canvases with true and predicted
boxes; result.json gets robustness per corruption, worse for the models FRAGILITY calls fragile.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from jobs.engine.data.corruptions import CORRUPTIONS
from jobs.engine.measure.calibration import calibration_summary
from jobs.engine.measure.final_evaluation import MAX_ERROR_IMAGES, PREDICTIONS_FILE

N_TEST = 1000
FAILED_REASON = "ImageNet weights for alexnet are not available offline (torch hub cache is empty)"
ONNX_REASON = "ExportError: aten::_native_multi_head_attention has no ONNX symbolic for opset 18"

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
    images = digits(labels)
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
            result |= keep_predictions(run, model, spec, seed, result, images)
            (run / "result.json").write_text(json.dumps(result, indent=1))
    sweep = {"preset": "quick", "models": list(specs), "search": "optuna", "samples": samples, "seeds": seeds,
             "started": "2025-11-23T16:00:00+00:00", "finished": "2025-11-23T16:42:10+00:00", "wall_time_s": 2530.4,
             "env": {"torch": "2.14.1", "ray": "2.60.0", "device": "cpu", "python": "3.11.9", "workers": 1,
                     "use_gpu": False, "cpus_per_worker": 2.0},
             "spaces": {model: SPACE for model in specs}, "status": status}
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
    # What it costs to serve (made up, consistent): latency at batch 1 per image (per canvas for the detector),
    # throughput, GFLOPs, size, and the ONNX check: the detector is not exported, vit's export fails.
    latency = round(8000 / spec["ips"] * jitter, 4)
    gflops = spec["params"] * 1e-8
    result |= {"latency_ms_p50": latency, "latency_ms_p95": round(latency * 1.3, 4),
               "throughput_per_s": round(2 * spec["ips"] / jitter, 1), "gflops_per_image": gflops,
               "train_flops": 3 * gflops * 1e9 * 54_000 * epochs, "model_size_mb": spec["params"] * 4 / 1e6,
               "serving": {"unit": "canvas" if "map" in spec else "image", "device": "cpu", "device_name": "cpu",
                           "threads": 4, "precision": "fp32", "latency_batch": 1, "latency_calls": 100,
                           "latency_warmup": 10, "throughput_batch": 256, "throughput_calls": 3,
                           "throughput_warmup": 1, "latency_ms_p50": latency}}
    if "map" not in spec:
        exported = model != "vit"
        result |= {"onnx_agreement": 1.0 if exported else None, "onnx_accuracy": accuracy if exported else None,
                   "onnx_latency_ms_p50": round(latency * 0.6, 4) if exported else None,
                   "onnx": {"ok": exported, "exported": exported, "exporter": "dynamo" if exported else None,
                            "reason": None if exported else ONNX_REASON, "path": "model.onnx" if exported else None}}
    return result


# ---- predictions.npz, calibration and robustness ------------------------------------------------------------

# The space _trials samples from, as sweep.json records a --space override.
SPACE = {"lr": {"loguniform": [10 ** -3.5, 1e-2]}, "batch_size": {"choice": [64, 128]},
         "weight_decay": {"loguniform": [1e-5, 1e-3]}}
# Accuracy lost per corruption, times each model's fragility: resnet18 is accurate but fragile, so in clear_winner
# and cheap_runner_up its rank under corruption is not its clean rank; in close_call the ranks stay.
DROP = {"shift": 0.05, "rotate": 0.08, "scale": 0.04, "gaussian_noise": 0.10, "impulse_noise": 0.12, "blur": 0.03,
        "contrast": 0.15, "invert": 0.6}
FRAGILITY = {"cnn": 1.0, "vit": 1.3, "resnet18": 1.5, "faster_rcnn": 1.1}
SEGMENTS = {0: "abcdef", 1: "bc", 2: "abged", 3: "abgcd", 4: "fgbc", 5: "afgcd", 6: "afgedc", 7: "abc", 8: "abcdefg",
            9: "abcdfg"}
# (rows, columns) of each segment in a 28 x 28 image, before a per-image shift.
BARS = {"a": (slice(4, 7), slice(8, 21)), "b": (slice(4, 15), slice(18, 21)), "c": (slice(13, 25), slice(18, 21)),
        "d": (slice(22, 25), slice(8, 21)), "e": (slice(13, 25), slice(8, 11)), "f": (slice(4, 15), slice(8, 11)),
        "g": (slice(13, 16), slice(8, 21))}
CANVAS, CANVASES = 84, 6


def digits(labels: np.ndarray) -> np.ndarray:
    """A seven-segment drawing of each label, uint8 [N, 28, 28], bright ink on black as MNIST stores it."""
    rng = np.random.default_rng(11)
    out = np.zeros((len(labels), 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        image = np.zeros((28, 28), dtype=np.uint8)
        for segment in SEGMENTS[int(label)]:
            image[BARS[segment]] = rng.integers(190, 256)
        out[i] = np.roll(image, tuple(rng.integers(-3, 4, 2)), axis=(0, 1))
    return out


def keep_predictions(run: Path, model: str, spec: dict, seed: int, result: dict[str, Any],
                     images: np.ndarray) -> dict[str, Any]:
    """Write RUN/predictions.npz for RESULT's predictions; returns the result.json fields that come with it."""
    rng = np.random.default_rng(500 + 10 * seed + len(model))
    labels, predictions = np.array(result["test_labels"]), np.array(result["test_predictions"])
    wrong = np.flatnonzero(predictions != labels)
    arrays: dict[str, np.ndarray] = {"labels": labels.astype(np.int16), "predictions": predictions.astype(np.int16)}
    extra: dict[str, Any] = {}
    if "map" in spec:  # the detector: no probabilities, a few canvases with boxes
        arrays |= canvases(rng)
    else:
        probabilities = _probabilities(labels, predictions, rng).astype(np.float16)
        confidence = probabilities.max(axis=1).astype(np.float64)
        wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
        arrays["probabilities"] = probabilities
        stored = probabilities.astype(np.float64)
        summary = calibration_summary(stored / stored.sum(axis=1, keepdims=True), labels)
        extra |= {"ece": summary["ece"], "nll": summary["nll"], "brier": summary["brier"]}
    wrong = wrong[:MAX_ERROR_IMAGES]
    arrays |= {"error_indices": wrong.astype(np.int32), "error_images": images[wrong]}
    np.savez_compressed(run / PREDICTIONS_FILE, **arrays)
    scores = {name: round(max(0.0, spec["acc"] - DROP[name] * FRAGILITY[model] + 0.002 * seed), 4)
              for name in CORRUPTIONS}
    return extra | {"robustness": scores, "robustness_mean": float(np.mean(list(scores.values())))}


def _probabilities(labels: np.ndarray, predictions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows that sum to 1 with the prediction on top: confident when right, less so (and with mass on the truth)
    when wrong."""
    n, rows = len(labels), np.arange(len(labels))
    right = predictions == labels
    # Mostly confident when right, but one in six right answers is a hesitant one, as real models have.
    sure = rng.random(n) < 5 / 6
    top = np.where(right, np.where(sure, rng.uniform(0.93, 0.9995, n), rng.uniform(0.5, 0.93, n)),
                   rng.uniform(0.45, 0.97, n))
    rest = 1.0 - top
    out = np.tile(np.where(right, rest / 9, rest * 0.4 / 8)[:, None], (1, 10))
    out[rows[~right], labels[~right]] = rest[~right] * 0.6
    out[rows, predictions] = top
    return out


def canvases(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """CANVASES test canvases of 1 to 3 digits with their boxes, and the detector's boxes: each true box moved a
    little, its digit right but on the last canvas, its score high; the second canvas's last digit is missed."""
    labels = rng.integers(0, 10, 3 * CANVASES)
    glyphs = digits(labels)
    images = np.zeros((CANVASES, CANVAS, CANVAS), dtype=np.uint8)
    true_boxes, true_labels, true_counts = [], [], []
    pred_boxes, pred_labels, pred_scores, pred_counts = [], [], [], []
    for c in range(CANVASES):
        count = 1 + c % 3
        predicted = 0
        for k in range(count):
            x, y = 1 + 27 * k, int(rng.integers(4, CANVAS - 32))
            label = int(labels[3 * c + k])
            images[c, y:y + 28, x:x + 28] = np.maximum(images[c, y:y + 28, x:x + 28], glyphs[3 * c + k])
            true_boxes.append([x + 6, y + 2, x + 22, y + 26])
            true_labels.append(label)
            if c == 1 and k == count - 1:
                continue
            shift = rng.integers(-2, 3, 4)
            pred_boxes.append([x + 6 + shift[0], y + 2 + shift[1], x + 22 + shift[2], y + 26 + shift[3]])
            pred_labels.append((label + 1) % 10 if c == CANVASES - 1 else label)
            pred_scores.append(rng.uniform(0.6, 0.99))
            predicted += 1
        true_counts.append(count)
        pred_counts.append(predicted)
    return {"canvases": images, "true_boxes": np.array(true_boxes, np.float32),
            "true_labels": np.array(true_labels, np.int16), "true_counts": np.array(true_counts, np.int32),
            "pred_boxes": np.array(pred_boxes, np.float32), "pred_labels": np.array(pred_labels, np.int16),
            "pred_scores": np.array(pred_scores, np.float16), "pred_counts": np.array(pred_counts, np.int32)}
