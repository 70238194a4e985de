"""The training step with static shapes, captured once as a CUDA graph and replayed (loop key `compile`).

A step of the default CNN at batch 128 is ~5 ms of kernel launches and Python for well under 1 ms of GPU work.
Captured, a step is one `graph.replay()`: batch assembly from the on-device uint8 data, augmentation, forward,
backward, fused optimizer and learning rate, all on the device, no host sync inside an epoch. What makes that
possible is that every input of the step lives in a tensor the graph reads at a fixed address:
- `order`: the epoch's sample order, refilled each epoch; `position`: where the next batch starts in it;
- `step`: the global step, which picks each parameter group's learning rate from `lr_table`
  (jobs/engine/train/optim.py);
- `loss_sum`: the epoch's summed loss, read once at the end of the epoch.

Every sample is still used once per epoch: full batches replay the graph, and the tail (fewer samples than a
batch, or a batch with a remainder too small to train on folded into it: jobs/engine/data/batches.py) runs the same
step eagerly at its own size. Capture runs a few real steps first on a side stream (cuDNN
and cuBLAS choose kernels, optimizer state is allocated, as PyTorch's CUDA graph notes require); their time is
counted in `compile_time_s` with the capture, on the run's training clock (jobs/engine/train/clock.py). On a CPU
there is nothing to capture and every step runs eagerly: the same arithmetic, which is what the CPU tests compare
with the eager loop.

A capture that raises (an op that synchronises with the host, a random generator not registered with the graph,
an optimizer that is not capturable: nothing here has run on every card) must not fail the run: the step falls
back to the eager step (`eager`, the same arithmetic) for the rest of the run, says so in one warning line, and
keeps the reason in `fallback` for result.json. The same holds when a warm-up step raises (the steps that
finished are counted; a step that raised part-way updated nothing, as the optimizer step is its last write) or
when `graph.replay()` raises when called (nothing was launched). A replay whose kernels fail later is a CUDA error
reported at the next sync, and such an error (an illegal address) poisons the process's CUDA context: nothing
can fall back inside it, and the run fails like any other and is recorded so (a trial restarted from its
checkpoint captures afresh).
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn

from jobs.engine.data.batches import MIN_BATCH, full_and_tail
from jobs.engine.train.clock import TrainingClock

WARMUP_STEPS = 3


def captures(device: torch.device) -> bool:
    """Whether the step is captured on DEVICE: on CUDA only (a CPU has no graphs to capture)."""
    return device.type == "cuda"


class StaticStep:
    def __init__(self, model: nn.Module, task: Any, optimizer: torch.optim.Optimizer, lrs: torch.Tensor,
                 first_step: int, batch_size: int, grad_clip: float, epoch_size: int, device: torch.device,
                 clock: TrainingClock | None = None) -> None:
        self.model, self.task, self.optimizer, self.grad_clip = model, task, optimizer, grad_clip
        self.device, self.batch_size = device, batch_size
        self.capture = captures(device)
        self.order = torch.zeros(epoch_size, dtype=torch.long, device=device)
        self.position = torch.zeros((), dtype=torch.long, device=device)
        self.step = torch.full((), first_step, dtype=torch.long, device=device)
        self.lrs = lrs.to(device)
        self.loss_sum = torch.zeros((), device=device)
        # A folded tail is up to MIN_BATCH - 1 samples longer than a batch; full batches read the first batch_size.
        self.offsets = torch.arange(batch_size + MIN_BATCH - 1, device=device)
        self.batch_offsets = self.offsets[:batch_size]
        for group, lr in zip(optimizer.param_groups, lrs[first_step].tolist(), strict=True):
            group["lr"] = torch.tensor(lr, device=device)  # updated in place by every step, captured or not
        self.graph: torch.cuda.CUDAGraph | None = None
        self.clock = clock or TrainingClock()  # the loop's, so that the capture is taken out of its training time
        self.fallback: str | None = None  # why this run trains with the eager step after all, for result.json

    @property
    def compile_time_s(self) -> float:
        return self.clock.compile_time_s

    def epoch(self, indices: torch.Tensor) -> torch.Tensor:
        """Train on `indices` (on the device, `epoch_size` of them); returns the summed loss, still on the device."""
        self.order.copy_(indices)
        self.position.zero_()
        self.loss_sum.zero_()
        full, tail = full_and_tail(len(indices), self.batch_size)
        done = 0
        while done < full:
            if self.graph is not None:
                done += self.replay()
            elif self.capture and full - done > WARMUP_STEPS:
                done += self.capture_or_fall_back()
            else:
                self.eager(self.batch_offsets)
                done += 1
        if tail:
            self.eager(self.offsets[:tail])
        return self.loss_sum.clone()

    def run(self, offsets: torch.Tensor) -> None:
        """One step on the `len(offsets)` samples from `position` on; everything it reads or writes is on the device."""
        batch = self.order.index_select(0, self.position + offsets)
        lrs = self.lrs.index_select(0, self.step.view(1))[0]
        for i, group in enumerate(self.optimizer.param_groups):
            group["lr"].copy_(lrs[i])
        loss = self.task.loss(self.model, batch)
        loss.backward()
        if self.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.loss_sum += loss.detach() * len(offsets)
        self.position += len(offsets)
        self.step += 1

    def eager(self, offsets: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.run(offsets)

    def replay(self) -> int:
        """One full batch by the graph; 1. A replay that raises when called launched nothing: fall back."""
        assert self.graph is not None
        try:
            self.graph.replay()
        except Exception as exc:  # noqa: BLE001 - any failure to launch: the eager step trains the batch instead
            self.fall_back("replay", exc)
            self.eager(self.batch_offsets)
        return 1

    def capture_or_fall_back(self) -> int:
        """warm_up_and_capture; if it raises, the eager step from here on. Returns the steps trained (the warm-up
        steps that finished before a failure). One host sync, once a run: reading `position` after a failure."""
        before = int(self.position)
        try:
            return self.warm_up_and_capture()
        except Exception as exc:  # noqa: BLE001 - whatever the capture trips on, the run trains on eagerly
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)  # the side stream's finished steps, before position is read
            self.fall_back("capture", exc)
            return (int(self.position) - before) // self.batch_size

    def fall_back(self, phase: str, exc: BaseException) -> None:
        """The eager step for the rest of the run: one warning line, the reason kept in `fallback`."""
        self.capture, self.graph = False, None
        self.optimizer.zero_grad(set_to_none=True)  # gradients a failed capture left in the graph's pool
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        self.fallback = f"{phase} failed: {type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")[:300]
        sys.stderr.write(f"warning: the captured CUDA step's {self.fallback}; this run trains with the eager step\n")
        sys.stderr.flush()

    def warm_up_and_capture(self) -> int:
        """Run WARMUP_STEPS real steps on a side stream, then capture one step; returns the steps it trained."""
        with self.clock.compiling():
            self.warm_up()
            self.graph = self.captured()
        return WARMUP_STEPS

    def warm_up(self) -> None:
        """WARMUP_STEPS real steps on a side stream (cuDNN and cuBLAS choose kernels, optimizer state exists)."""
        current = torch.cuda.current_stream(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self.eager(self.batch_offsets)
        current.wait_stream(side)

    def captured(self) -> torch.cuda.CUDAGraph:
        """One step captured as a graph: recorded, not run (position and step are as they were)."""
        # Gradients allocated inside the capture live in the graph's pool: each replay writes them afresh.
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        # thread_local: Ray's own threads may touch CUDA while this one captures.
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self.run(self.batch_offsets)
        torch.cuda.synchronize(self.device)
        return graph
