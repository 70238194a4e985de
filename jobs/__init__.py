"""Ray job entry points, the data pipeline and the one training loop."""
