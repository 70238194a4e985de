"""Training: the one loop (`loop`) in torchvision's order, its eager epoch and captured CUDA step, the optimizer
and schedule, what the loop needs from Ray (`sessions`), its progress lines, the CPUs it may use and a finished
run's checkpoint. Imports the top level, data/, tasks/ and measure/."""
