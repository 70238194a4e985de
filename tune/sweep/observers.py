"""What may watch a sweep as it runs without the sweep knowing it (an experiment tracker, tune/track/): the command
(jobs/sweep.py) hands the sweep its observers; the sweep tells them of each trial (as Tune callbacks), each
retrain and its end. An observer that fails costs the sweep nothing: `notify` says so once and goes on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from jobs.engine.train.progress import say

if TYPE_CHECKING:
    from ray import tune as ray_tune

    from tune.sweep.record import Sweep


class SweepObserver(Protocol):
    name: str  # how its failure is named in the sweep's output

    def trial_callbacks(self, sweep: Sweep, model: str) -> list[ray_tune.Callback]:
        """Tune callbacks for MODEL's search (on the driver): each trial's start, checks and end."""
        ...

    def retrained(self, sweep: Sweep, model: str, seed: int) -> None:
        """MODEL's retrain with SEED has its whole result.json (also one a resume kept)."""
        ...

    def finished(self, sweep: Sweep) -> None:
        """sweep.json is complete; the command writes the report after this."""
        ...


@dataclass
class Observers:
    """One sweep run's observers, and those silenced after a failure."""

    each: Sequence[SweepObserver] = ()
    silenced: set[str] = field(default_factory=set)

    def notify(self, call: Callable[[SweepObserver], object]) -> None:
        """CALL on each observer; one that raises is named once in the sweep's output and not called again."""
        for observer in self.each:
            if observer.name in self.silenced:
                continue
            try:
                call(observer)
            except Exception as exc:  # noqa: BLE001 - a tracker's failure is never worth a sweep
                self.silenced.add(observer.name)
                say(f"{observer.name}: {type(exc).__name__}: {exc}; the sweep goes on without it")

    def trial_callbacks(self, sweep: Sweep, model: str) -> list[ray_tune.Callback]:
        out: list[ray_tune.Callback] = []
        self.notify(lambda observer: out.extend(observer.trial_callbacks(sweep, model)))
        return out
