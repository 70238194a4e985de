"""A retrain's ONNX model (model.onnx beside its result.json) logged as an MLflow model: the ONNX flavour, with a
signature and an input example of the graph's own input, so that `mlflow models serve` and the registry take it."""

from __future__ import annotations

from pathlib import Path

from tune.track.tracker import Tracker

# ONNX Runtime's input type names and their numpy dtypes (our classifiers take float; the rest for other exports).
DTYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
          "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(uint8)": "uint8"}
MODEL_NAME = "onnx"  # the logged model's name in its run


def log_onnx(tracker: Tracker, run_id: str, path: Path) -> tuple[str, str]:
    """PATH's model on RUN_ID; returns its model URI (models:/m-..., what the registry registers) and its id."""
    import mlflow
    import mlflow.onnx
    import numpy as np
    import onnx
    import onnxruntime
    from mlflow.models import infer_signature

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    # One input of the declared shape, a batch of one where a dimension is left open (the batch).
    example = np.zeros([d if isinstance(d, int) else 1 for d in first.shape], dtype=DTYPES.get(first.type, "float32"))
    signature = infer_signature(example, session.run(None, {first.name: example})[0])
    mlflow.set_tracking_uri(tracker.uri)  # log_model goes through MLflow's process-wide tracker
    # and puts the model in the process-wide experiment, not its run's: "Default" unless set (MLflow 3.17's
    # fluent._create_logged_model), which left the sweep's experiment's Models view empty.
    mlflow.set_experiment(experiment_id=tracker.experiment_id())
    info = mlflow.onnx.log_model(
        onnx.load(str(path)), name=MODEL_NAME, run_id=run_id, signature=signature, input_example=example,
        # Named, not inferred: MLflow's inference runs a Python process per model (~5 s each on 2 cores).
        pip_requirements=[f"onnx=={onnx.__version__}", f"onnxruntime=={onnxruntime.__version__}"],
        onnx_execution_providers=["CPUExecutionProvider"], save_as_external_data=False)
    return info.model_uri, info.model_id
