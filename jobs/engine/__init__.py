"""The engine: everything one training run needs, in rooms that import only downward, in this order:

- here, at the top: what every room shares: errors a user can fix (`errors`), records written whole (`atomic`), the
  declared run config and its presets (`config`, `presets`), the precision policy (`precision`) and the run's
  result type (`run_result`);
- `data/`: MNIST in any form, its batches, shards, augmentation and corruptions;
- `tasks/`: what the loop asks of a model family (classification, detection) and their metrics;
- `measure/`: what a final run measures after training: serving, FLOPs, ONNX, calibration, robustness;
- `train/`: the one training loop, its epoch, captured step, optimizer, sessions and progress lines;
- `run/`: launching a run on Ray: the cluster, its checks, the three ways a run is launched, lost nodes;
- `bench/`: what `make bench` measures.

A room may import the top and the rooms above it in this list, never one below (tests/test_layers.py).
"""
