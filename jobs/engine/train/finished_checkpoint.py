"""A finished run keeps its weights, not its optimizer state.

A run's checkpoint holds the model's weights and the optimizer's per-parameter state (AdamW: two more tensors the
size of the weights, so three times the weights in all) for a run that continues. Once a run has ended and its
result.json is written, nothing continues it: its weights are what the report, serving and a fine-tune read.

The file keeps its name and layout ({"model", "optimizer", "schedule", "state"}), with the optimizer's
per-parameter tensors dropped and its param_groups (learning rates, a few hundred bytes) kept: the loop can still
load it (jobs/engine/train/prepare.py), and, the run finished (its summary beside it), trains and measures nothing
more; its driver reads the summary from the folder, which is how a torn result.json is redone cheaply.
"""

from __future__ import annotations

from pathlib import Path

import torch

from jobs.engine.atomic import replacing
from jobs.engine.train.state import CHECKPOINT_FILE


def keep_weights_only(checkpoint: Path) -> int:
    """Drop the optimizer's per-parameter state from CHECKPOINT/checkpoint.pt of a finished run, in place and whole
    (the file is replaced only once the smaller one is written). Returns the bytes freed: 0 when there is no such
    file or it holds no optimizer state. Raises OSError (ENOSPC included) from the write; the file is then as it
    was."""
    path = Path(checkpoint) / CHECKPOINT_FILE
    if not path.is_file():
        return 0
    before = path.stat().st_size
    saved = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    optimizer = saved.get("optimizer")
    if not isinstance(optimizer, dict) or not optimizer.get("state"):
        return 0
    saved["optimizer"] = {**optimizer, "state": {}}
    with replacing(path) as temporary:
        torch.save(saved, temporary)
    return before - path.stat().st_size
