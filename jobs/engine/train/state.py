"""What the loop's checkpoint carries besides the weights, the optimizer and the schedule (`LoopState`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from jobs.engine.run_result import Metrics

CHECKPOINT_FILE = "checkpoint.pt"  # {"model", "optimizer", "schedule": state dicts, "state": LoopState.saved()}


@dataclass
class LoopState:
    """The run so far, saved in every checkpoint as a plain dict (`saved`), so that a checkpoint of an earlier
    version, whose dict may lack the later keys, loads as well (`from_saved`)."""

    epoch: int = 0  # epochs finished
    history: list[Metrics] = field(default_factory=list)
    train_time_s: float = 0.0
    train_images: int = 0
    compile_time_s: float = 0.0
    started_at: str | None = None  # when the run began to hold its CPU/GPU
    first_step_at: str | None = None  # when it began to train: the start-up a trial pays lies between
    step_fallback: str | None = None  # why the captured CUDA step gave way to the eager one (static_step.py)

    def saved(self) -> dict[str, object]:
        saved = dataclasses.asdict(self)
        if self.step_fallback is None:  # the key only where the captured step fell back, as it always was
            del saved["step_fallback"]
        return saved

    @classmethod
    def from_saved(cls, saved: dict[str, object]) -> LoopState:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in names})  # type: ignore[arg-type]
