"""The engine: data, the declared run config, the one training loop, its tasks, and launching a run on Ray."""
