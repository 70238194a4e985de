"""Presets, search spaces, the sweep's Tuner and the aggregation of its results."""
