"""The CNN through the one loop under Ray Train: it learns, and its result.json holds what the issue lists."""

import math

import pytest

REQUIRED = ("model", "config", "test_accuracy", "test_f1_macro", "test_f1_weighted", "test_loss", "train_time_s",
            "epochs", "params", "images_per_s", "peak_memory_mb", "history", "confusion_matrix", "env")


@pytest.mark.slow
def test_cnn_smoke_run_learns_and_writes_result(smoke_run, tmp_path):
    result = smoke_run("cnn", ["epochs=2"], final_checks=True)
    assert set(REQUIRED) <= set(result)
    assert result["epochs"] == 2 and len(result["history"]) == 2
    # Chance is 10% accuracy and a loss of ln(10); two small epochs must be far better than that.
    assert result["history"][-1]["train_loss"] < 0.8 * math.log(10)
    assert result["test_accuracy"] > 0.5
    assert sum(map(sum, result["confusion_matrix"])) == 1000  # the smoke preset's test subset
    assert result["params"] > 100_000 and result["images_per_s"] > 0 and result["peak_memory_mb"] > 0
    assert (tmp_path / "run" / "result.json").is_file()
    # What the final run measured after its test evaluation, through Ray Train (jobs.train's way) too.
    assert result["final_evaluation_errors"] == {}
    assert 0 < result["latency_ms_p50"] <= result["latency_ms_p95"] and result["throughput_per_s"] > 0
    assert result["serving"]["latency_calls"] >= 100 and result["serving"]["threads"] >= 1
    assert result["gflops_per_image"] > 0 and result["model_size_mb"] > 0 and result["train_flops"] > 0
    assert result["onnx_agreement"] >= 0.999 and result["onnx"]["path"] == "model.onnx"
    assert 0 <= result["ece"] <= 1 and result["nll"] > 0 and 0 <= result["brier"] <= 2
    assert set(result["robustness"]) >= {"shift", "rotate", "scale", "gaussian_noise", "blur", "contrast", "invert"}
    for name in ("predictions.npz", "model.onnx"):  # beside result.json, copied out of Ray Train's checkpoint
        assert (tmp_path / "run" / name).is_file()


@pytest.mark.slow
def test_a_worker_failure_resumes_from_the_last_epoch_checkpoint(smoke_run, train_events):
    # The worker raises once at the start of epoch 2; FailureConfig restarts the worker group, which must load
    # epoch 1's checkpoint and train only epoch 2, not start over.
    result = smoke_run("cnn", ["epochs=2", "fail_at_epoch=1"], name="restarted")
    events = train_events()
    assert len(events) == 3, events  # report, failure, report: a restart from scratch reports epoch 1 twice
    first, failure, second = events
    assert [first["reports"][0]["epoch"], second["reports"][0]["epoch"]] == [1, 2]
    assert first["checkpoint"] and second["checkpoint"]
    assert "injected failure at epoch 1" in failure["exceptions"]["0"]
    # Epoch 1's entry came back from the checkpoint: the very numbers the first attempt reported.
    assert result["history"] == [first["reports"][0], second["reports"][0]]
    assert result["epochs"] == 2 and result["test_accuracy"] > 0.3



@pytest.mark.slow
def test_a_divergence_is_not_restarted_from_scratch(smoke_run, train_events):
    # SGD at lr 10 with momentum 0.99 turns the loss to NaN in epoch 1. FailureConfig would replay that same
    # divergence; the worker reports it instead of raising, once, and the driver raises Diverged.
    from jobs.engine.errors import Diverged

    with pytest.raises(Diverged, match="training diverged: the loss is nan at epoch 1"):
        smoke_run("cnn", ["lr=10", "optimizer=sgd", "momentum=0.99", "precision=fp32"], max_failures=3)
    events = train_events()
    assert len(events) == 1 and "exceptions" not in events[0], events
    assert "diverged" in events[0]["reports"][0]
