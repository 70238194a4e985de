"""Training: the one loop (`loop`) in torchvision's order, what it is built from on the worker (`prepare`), its
eager epoch and captured CUDA step, its one training clock (`clock`), its checkpointed state (`state`) and finished
run's summary (`summary`), the optimizer and schedule, what the loop needs from Ray (`sessions`), its progress
lines, the CPUs it may use and a finished run's checkpoint. Imports the top level, data/, tasks/ and measure/."""
