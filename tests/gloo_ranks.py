"""What each process of a two-process gloo group runs in tests/test_data_parallel.py: a module of its own, so that a
spawned process imports only this, torch and the loop, not the test module and everything it imports."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.distributed as dist


def mean_on_every_rank(rank: int, sums: list[float], per_rank: int, folder: str) -> None:
    """Rank RANK averages its own loss sum with the others' (jobs/engine/train/loop.py `mean_over_ranks`) and writes
    what it got to FOLDER/rank<RANK>.json."""
    from jobs.engine.train.loop import mean_over_ranks

    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=len(sums))
    try:
        mean = mean_over_ranks(torch.tensor(sums[rank]), per_rank, dist.get_world_size())
        Path(folder, f"rank{rank}.json").write_text(json.dumps(mean))
    finally:
        dist.destroy_process_group()
