"""Benchmarks: what `make bench` measures on the CPU (`cpu`) and the GPU (`gpu`): our loop against the common
DataLoader recipes, same model and batch. The engine's last room: it may import any other, none imports it."""
