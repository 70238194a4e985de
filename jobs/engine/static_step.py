"""The training step with static shapes, captured once as a CUDA graph and replayed (loop key `compile`).

A step of the default CNN at batch 128 is ~5 ms of kernel launches and Python for well under 1 ms of GPU work.
Captured, a step is one `graph.replay()`: batch assembly from the on-device uint8 data, augmentation, forward,
backward, fused optimizer and learning rate, all on the device, no host sync inside an epoch. What makes that
possible is that every input of the step lives in a tensor the graph reads at a fixed address:
- `order`: the epoch's sample order, refilled each epoch; `position`: where the next batch starts in it;
- `step`: the global step, which picks each parameter group's learning rate from `lr_table` (jobs/optim.py);
- `loss_sum`: the epoch's summed loss, read once at the end of the epoch.

Every sample is still used once per epoch: full batches replay the graph, and the tail (fewer samples than a
batch) runs the same step eagerly at its own size. Capture runs a few real steps first on a side stream (cuDNN
and cuBLAS choose kernels, optimizer state is allocated, as PyTorch's CUDA graph notes require); their time is
counted in `compile_time_s` with the capture. On a CPU there is nothing to capture and every step runs eagerly:
the same arithmetic, which is what the CPU tests compare with the eager loop.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

WARMUP_STEPS = 3


class StaticStep:
    def __init__(self, model: nn.Module, task: Any, optimizer: torch.optim.Optimizer, lrs: torch.Tensor,
                 first_step: int, batch_size: int, grad_clip: float, epoch_size: int, device: torch.device) -> None:
        self.model, self.task, self.optimizer, self.grad_clip = model, task, optimizer, grad_clip
        self.device, self.batch_size = device, batch_size
        self.capture = device.type == "cuda"
        self.order = torch.zeros(epoch_size, dtype=torch.long, device=device)
        self.position = torch.zeros((), dtype=torch.long, device=device)
        self.step = torch.full((), first_step, dtype=torch.long, device=device)
        self.lrs = lrs.to(device)
        self.loss_sum = torch.zeros((), device=device)
        self.offsets = torch.arange(batch_size, device=device)
        for group, lr in zip(optimizer.param_groups, lrs[first_step].tolist(), strict=True):
            group["lr"] = torch.tensor(lr, device=device)  # updated in place by every step, captured or not
        self.graph: torch.cuda.CUDAGraph | None = None
        self.compile_time_s = 0.0

    def epoch(self, indices: torch.Tensor) -> torch.Tensor:
        """Train on `indices` (on the device, `epoch_size` of them); returns the summed loss, still on the device."""
        self.order.copy_(indices)
        self.position.zero_()
        self.loss_sum.zero_()
        full, tail = divmod(len(indices), self.batch_size)
        done = 0
        while done < full:
            if self.graph is not None:
                self.graph.replay()
                done += 1
            elif self.capture and full - done > WARMUP_STEPS:
                done += self.warm_up_and_capture()
            else:
                self.eager(self.offsets)
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

    def warm_up_and_capture(self) -> int:
        """Run WARMUP_STEPS real steps on a side stream, then capture one step; returns the steps it trained."""
        started = time.perf_counter()
        current = torch.cuda.current_stream(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self.eager(self.offsets)
        current.wait_stream(side)
        # Gradients allocated inside the capture live in the graph's pool: each replay writes them afresh.
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        # thread_local: Ray's own threads may touch CUDA while this one captures.
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self.run(self.offsets)
        torch.cuda.synchronize(self.device)
        self.graph = graph
        self.compile_time_s += time.perf_counter() - started
        return WARMUP_STEPS
