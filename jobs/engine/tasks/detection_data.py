"""A detection set made from MNIST: canvases holding one to `max_digits` digits at random positions and scales.

Built once per split as batched tensor ops on the worker's device, from the uint8 digits already there. Every
random draw comes from a CPU generator seeded per split, so a seed gives the same canvases on every run (and
on every rank). Boxes are the ink extent of each placed digit, in torchvision's continuous xyxy convention: a
digit whose ink covers pixel columns x0..x1 and rows y0..y1 gets [x0, y0, x1 + 1, y1 + 1]. Ink boxes never
overlap (nor touch), so the nonzero pixels inside a box are exactly that digit's ink.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from jobs.engine.data.mnist import SIDE, Mnist

TRIES = 24  # candidate positions per digit; a digit with no free spot among them is left out of its canvas
GAP = 1  # empty pixels kept between two ink boxes, so that no two boxes touch
SPLIT_SEEDS = {"val": 7_001, "test": 7_002}  # fixed: evaluation canvases must not move between runs or trials


@dataclass
class Canvases:
    images: torch.Tensor  # uint8 [n, C, C]
    boxes: torch.Tensor  # float32 [n, max_digits, 4], xyxy; zeros in empty slots
    labels: torch.Tensor  # int64 [n, max_digits]: digit + 1, 0 in empty slots (0 is the background class)
    sources: torch.Tensor  # int64 [n, max_digits]: index of the digit in its source split, -1 in empty slots

    def __len__(self) -> int:
        return len(self.images)

    def targets(self, indices: torch.Tensor | slice, device: torch.device | str | None = None
                ) -> list[dict[str, torch.Tensor]]:
        """torchvision's target format for these canvases: one dict of boxes and labels per canvas (on `device`,
        default where the canvases are).

        One host sync for the batch (the box counts), not two per canvas as a boolean mask per canvas costs: the
        filled slots move to the front (in slot order), and each canvas gets a view of its first `count`."""
        boxes, labels = self.boxes[indices], self.labels[indices]
        keep = labels > 0
        order = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)
        boxes = boxes.gather(1, order[..., None].expand(-1, -1, 4)).to(device or boxes.device)
        labels = labels.gather(1, order).to(device or labels.device)
        counts = keep.sum(1).tolist()
        return [{"boxes": b[:n], "labels": lab[:n]} for b, lab, n in zip(boxes, labels, counts, strict=True)]


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W] -> float [B, 1, H, W] in [0, 1]; the detector's transform normalises from there."""
    return images.unsqueeze(1).float() / 255.0


def centred(images: torch.Tensor, canvas_size: int) -> torch.Tensor:
    """Plain 28x28 digits pasted alone at the centre of empty canvases (the classification view)."""
    out = images.new_zeros(len(images), canvas_size, canvas_size)
    top = (canvas_size - SIDE) // 2
    out[:, top:top + SIDE, top:top + SIDE] = images
    return out


def canvas_count(source_size: int, digits_per_canvas: float) -> int:
    return max(1, round(source_size / digits_per_canvas)) if source_size else 0


def ink_extent(patches: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """First ink row/column and ink height/width of each [m, s, s] patch, plus whether it has any ink."""
    rows, cols = (patches > 0).any(2), (patches > 0).any(1)
    side = patches.shape[-1]
    y0, x0 = rows.int().argmax(1), cols.int().argmax(1)
    y1 = side - 1 - rows.flip(1).int().argmax(1)
    x1 = side - 1 - cols.flip(1).int().argmax(1)
    return y0, x0, y1 - y0 + 1, x1 - x0 + 1, rows.any(1)


def make_canvases(images: torch.Tensor, labels: torch.Tensor, count: int, canvas_size: int = 84,
                  max_digits: int = 3, scale_min: float = 0.8, scale_max: float = 1.6, seed: int = 0) -> Canvases:
    """`count` canvases from the digits `images` [N, 28, 28] (uint8) and their `labels`, on their device."""
    device, n, slots, side = images.device, count, max_digits, canvas_size
    generator = torch.Generator().manual_seed(seed)
    if n == 0 or len(images) == 0:
        return Canvases(images.new_zeros(0, side, side), torch.zeros(0, slots, 4, device=device),
                        labels.new_zeros(0, slots), labels.new_zeros(0, slots))
    # Whole permutations back to back: every source digit is used before any is used again.
    reps = math.ceil(n * slots / len(images))
    sources = torch.cat([torch.randperm(len(images), generator=generator) for _ in range(reps)])
    sources = sources[:n * slots].view(n, slots).to(device)
    wanted = torch.randint(1, slots + 1, (n,), generator=generator).to(device)
    active = torch.arange(slots, device=device) < wanted[:, None]
    scales = scale_min + torch.rand(n, slots, generator=generator) * (scale_max - scale_min)
    sizes = (scales * SIDE).round().long().clamp(1, side).to(device)
    spots = torch.rand(n, slots, TRIES, 2, generator=generator).to(device)

    # Resize each group of equal size with one interpolate call; keep the patches for pasting.
    ink = torch.zeros(n, slots, 4, dtype=torch.long, device=device)  # y0, x0, h, w inside the patch
    groups = []
    for size in sizes[active].unique().tolist():
        where = active & (sizes == size)
        patches = F.interpolate(images[sources[where]].unsqueeze(1).float(), size=(size, size), mode="bilinear",
                                align_corners=False, antialias=size < SIDE)
        patches = patches.squeeze(1).round().clamp(0, 255).to(torch.uint8)
        y0, x0, h, w, has_ink = ink_extent(patches)
        ink[where] = torch.stack([y0, x0, h, w], 1)
        active[where] = active[where] & has_ink
        groups.append((where, patches))

    boxes, placed = place(ink[..., 2], ink[..., 3], active, spots, side)
    canvases = torch.zeros(n * side * side, dtype=torch.uint8, device=device)
    for where, patches in groups:
        keep = placed[where]
        paste(canvases, patches[keep], where.nonzero()[keep], boxes[where][keep], ink[where][keep], side)
    box_float = boxes.float() * placed[..., None]
    digit_labels = torch.where(placed, labels[sources] + 1, 0)
    return Canvases(canvases.view(n, side, side), box_float, digit_labels, torch.where(placed, sources, -1))


def place(heights: torch.Tensor, widths: torch.Tensor, active: torch.Tensor, spots: torch.Tensor,
          side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping ink boxes [n, slots, 4] (x1, y1, x2, y2 exclusive) and which slots got one.

    Slot by slot for all canvases at once: TRIES random spots each, the first that keeps GAP pixels from every
    box already placed wins. The first digit always fits (its ink is at most the canvas size).
    """
    n, slots = heights.shape
    boxes = torch.zeros(n, slots, 4, dtype=torch.long, device=heights.device)
    placed = torch.zeros_like(active)
    for j in range(slots):
        h, w = heights[:, j, None], widths[:, j, None]
        ty = (spots[:, j, :, 0] * (side - h + 1)).long()
        tx = (spots[:, j, :, 1] * (side - w + 1)).long()
        cand = torch.stack([tx, ty, tx + w, ty + h], -1)  # [n, TRIES, 4]
        prev = boxes[:, None, :j]  # [n, 1, j, 4]
        apart = ((cand[:, :, None, 2] + GAP <= prev[..., 0]) | (prev[..., 2] + GAP <= cand[:, :, None, 0])
                 | (cand[:, :, None, 3] + GAP <= prev[..., 1]) | (prev[..., 3] + GAP <= cand[:, :, None, 1]))
        free = (apart | ~placed[:, None, :j]).all(2)  # [n, TRIES]
        first = free.int().argmax(1)
        boxes[:, j] = cand[torch.arange(n, device=cand.device), first]
        placed[:, j] = active[:, j] & free.any(1)
    return boxes, placed


def paste(canvases: torch.Tensor, patches: torch.Tensor, slot_index: torch.Tensor, boxes: torch.Tensor,
          ink: torch.Tensor, side: int) -> None:
    """Write the ink-box part of each [m, s, s] patch into its box on the flat canvases.

    Outside its ink box a patch is blank, and ink boxes are disjoint, so every written pixel has exactly one
    writer: a plain indexed assignment, deterministic on any device (no atomics, no order dependence).
    """
    size = patches.shape[-1]
    steps = torch.arange(size, device=patches.device)
    rows = boxes[:, 1, None] - ink[:, 0, None] + steps  # canvas row of each patch row: patch top = box top - y0
    cols = boxes[:, 0, None] - ink[:, 1, None] + steps
    inside = (((rows >= boxes[:, 1, None]) & (rows < boxes[:, 3, None]))[:, :, None]
              & ((cols >= boxes[:, 0, None]) & (cols < boxes[:, 2, None]))[:, None, :])
    flat = slot_index[:, 0, None, None] * side * side + rows[:, :, None] * side + cols[:, None, :]
    canvases[flat[inside]] = patches[inside]


def split_canvases(data: Mnist, split: str, config: dict[str, Any]) -> Canvases:
    """The canvases of one split, from that split's digits only; train canvases follow the run's seed."""
    images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
    seed = SPLIT_SEEDS.get(split, 7_000 + 10 * config.get("seed", 0))
    return make_canvases(images, labels, canvas_count(len(labels), config["digits_per_canvas"]),
                         config["canvas_size"], config["max_digits"], config["scale_min"], config["scale_max"], seed)
