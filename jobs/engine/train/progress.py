"""What a person reads while a run trains: one line per epoch, then a short summary."""

from __future__ import annotations

import sys
from pathlib import Path

from jobs.engine.run_result import Metrics, RunResult


def say(text: str) -> None:
    """One line (or block) in one write: the architectures of a sweep print from threads of their own, and
    print() writes the text and its newline separately, so their lines would run into each other."""
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


def fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def print_epoch(m: Metrics, label: str = "") -> None:
    """LABEL tells apart the lines of runs that train at the same time (a sweep's retrains)."""
    done, total = m["epoch"], m["epochs"]
    left = m["train_time_s"] / done * (total - done)
    extra = f"  mAP@.5 {m['map_50']:.3f}" if "map_50" in m else ""
    say(f"{label}epoch {done:>3}/{total}  train loss {m['train_loss']:.4f}  val loss {m['val_loss']:.4f}  "
          f"val acc {m['val_accuracy'] * 100:6.2f}%{extra}  {m['images_per_s']:8.0f} img/s  "
          f"{fmt_duration(m['epoch_time_s'])}/epoch  ~{fmt_duration(left)} left")


def print_summary(r: RunResult, path: Path) -> None:
    """The closing lines of a run from its RunResult (jobs/engine/run_result.py)."""
    acc = "n/a" if r.test_accuracy is None else f"{r.test_accuracy * 100:.2f}%"
    f1 = "n/a" if r.test_f1_macro is None else f"{r.test_f1_macro:.4f}"
    say(f"\n{r.model}: test accuracy {acc}, macro-F1 {f1}, {r.params:,} parameters\n"
          f"  trained {r.epochs} epochs in {fmt_duration(r.train_time_s)} "
          f"({r.images_per_s:.0f} img/s on {r.env['workers']} worker(s), {r.env['device']}), "
          f"peak memory {r.peak_memory_mb:.0f} MB\n  result: {path}")
