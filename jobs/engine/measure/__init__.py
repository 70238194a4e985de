"""Final measurements: what a trained model is measured on once, after the loop's last epoch (`final_evaluation`
runs them all, into the finished run's folder): serving latency and throughput, FLOPs and size, ONNX export,
calibration, robustness, and how large its checkpoint is. A new measurement is a module here and a field of
jobs/engine/run_result.py's RunResult. Imports the top level, data/ and tasks/."""
