"""Data parallelism through Ray Train on CPU (gloo): sizing the workers, the loss over ranks, and the suite's one
Ray Train run of the loop (two workers, rank-0 reports, a restart from the last checkpoint)."""

import json
import math

import pytest
import torch

from jobs.engine.errors import UsageError
from jobs.engine.run import cluster
from jobs.engine.run.cluster import Workers, plan_workers
from jobs.engine.train.loop import mean_over_ranks
from jobs.train import main as train_main
from tests.cli import assert_usage_error, run_in_process
from tests.mlflow_server import keep_no_proxy, mlflow_available, session_mlflow_server


@pytest.fixture
def cluster_of(monkeypatch):
    """Makes plan_workers see a cluster of these totals instead of asking Ray."""
    def set_totals(cpus: float, gpus: float = 0.0) -> None:
        totals = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
        monkeypatch.setattr(cluster.ray, "cluster_resources", lambda: totals)

    return set_totals


@pytest.mark.parametrize(("cpus", "gpus", "count", "gpu", "planned"), [
    (2, 0, 1, "auto", Workers(1, False, 2.0)),  # one CPU worker gets every core for torch
    (2, 0, 2, "off", Workers(2, False, 1.0)),
    (8, 0, 3, "auto", Workers(3, False, 2.0)),  # whole cores each; the 2 left over stay free
    (16, 2, 2, "auto", Workers(2, True, 4.0)),  # a GPU each, and at most 4 CPUs to feed it
    (4, 2, 2, "auto", Workers(2, True, 2.0)),
    (16, 2, 2, "off", Workers(2, False, 8.0)),
])
def test_plan_workers_splits_the_cluster(cluster_of, cpus, gpus, count, gpu, planned):
    cluster_of(cpus, gpus)
    assert plan_workers(count, gpu) == planned
    assert planned.resources() == ({"CPU": planned.cpus_per_worker, "GPU": 1.0} if planned.use_gpu
                                   else {"CPU": planned.cpus_per_worker})


@pytest.mark.parametrize(("cpus", "gpus", "count", "gpu", "message"), [
    (2, 0, 0, "auto", "--workers must be >= 1, got 0"),
    (2, 0, -1, "off", "--workers must be >= 1, got -1"),
    (2, 0, 3, "auto", "--workers 3: the cluster has 2 CPU(s)"),
    (2, 0, 1, "on", "--gpu on with --workers 1: the cluster has 0 GPU(s)"),
    (8, 1, 2, "on", "--gpu on with --workers 2: the cluster has 1 GPU(s)"),
    (8, 1, 2, "auto", "--gpu auto with --workers 2: the cluster has 1 GPU(s)"),
])
def test_plan_workers_refuses_what_the_cluster_cannot_give(cluster_of, cpus, gpus, count, gpu, message):
    cluster_of(cpus, gpus)
    with pytest.raises(UsageError) as caught:
        plan_workers(count, gpu)
    assert str(caught.value) == message


@pytest.mark.slow  # starts the session's Ray
def test_more_workers_than_cpus_is_one_error_line_from_the_train_command(ray_local, mnist_dir, tmp_path, capsys):
    too_many = int(ray_local.cluster_resources()["CPU"]) + 1
    done = run_in_process(train_main, ["--model", "cnn", "--preset", "smoke", "--workers", str(too_many),
                                       "--gpu", "off", "--data-dir", str(mnist_dir), "--output", str(tmp_path)],
                          capsys)
    assert_usage_error(done, f"--workers {too_many}: the cluster has")
    assert not any(tmp_path.iterdir())  # refused before any training


def test_one_rank_averages_its_own_sum():
    assert mean_over_ranks(torch.tensor(12.0), per_rank=4, world=1) == 3.0
    assert mean_over_ranks(torch.tensor(0.0), per_rank=0, world=1) == 0.0  # no samples: no division by zero


@pytest.mark.slow  # two processes: the all-reduce is between processes, as between Ray Train's workers
@pytest.mark.process
def test_the_loss_is_averaged_over_the_samples_of_every_rank(tmp_path):
    # Rank 0 saw 5 samples with a loss of 2 each, rank 1 five with 6 each: every rank must report 4, not its own.
    import torch.multiprocessing as mp

    from tests.gloo_ranks import mean_on_every_rank

    mp.spawn(mean_on_every_rank, args=([10.0, 30.0], 5, str(tmp_path)), nprocs=2, join=True)
    assert [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)] == [4.0, 4.0]


@pytest.mark.slow
def test_ray_train_two_workers_report_from_rank_0_and_restart_from_the_last_checkpoint(
        ray_local, train_events, mnist_dir, tmp_path, capsys, request, monkeypatch):
    """The suite's one Ray Train run of the loop, through the train command as a user runs it: what only Ray Train
    does. Two workers (DDP over gloo) train one model; rank 1 joins each report barrier with nothing and only rank 0
    evaluates and checkpoints; a worker raises at the start of epoch 2, and FailureConfig restarts the group from
    epoch 1's checkpoint (not from scratch); the final run's measurements run on rank 0, its predictions land
    beside result.json. Logged to the session's MLflow server with --mlflow, where there is one (CI: always)."""
    server = None
    if mlflow_available():
        keep_no_proxy(monkeypatch)
        monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "train")
        server = session_mlflow_server(request.config)
    done = run_in_process(train_main, ["--model", "cnn", "--preset", "smoke", "--workers", "2", "--gpu", "off",
                                       "--set", "epochs=2", "--set", "fail_at_epoch=1", "--set", "export_onnx=false",
                                       "--set", "robustness_images=0", "--data-dir", str(mnist_dir),
                                       "--output", str(tmp_path), "--name", "restarted",
                                       *(["--mlflow", server.uri] if server else [])], capsys)
    assert done.returncode == 0, done.stderr[-3000:]
    events = train_events()
    # Report, failure, report, then the finished run's report (its test evaluation and final measurements, after
    # the loop): a restart from scratch reports epoch 1 twice.
    assert len(events) == 4, events
    first, failure, second, finished = events
    for epoch, event in ((1, first), (2, second), (2, finished)):
        rank_0, rank_1 = event["reports"]
        assert rank_0["epoch"] == epoch and rank_1 == {} and event["checkpoint"]
    assert "injected failure at epoch 1" in " ".join(failure["exceptions"].values())
    result = json.loads((tmp_path / "restarted" / "result.json").read_text())
    # Epoch 1's entry came back from the checkpoint: the very numbers the first attempt reported; epoch 2's carries
    # the test numbers, as the finished run reported it.
    assert result["history"] == [first["reports"][0], finished["reports"][0]]
    assert {k: v for k, v in finished["reports"][0].items() if not k.startswith("test_")} == second["reports"][0]
    assert result["env"]["workers"] == 2 and result["env"]["use_gpu"] is False and result["epochs"] == 2
    assert result["history"][-1]["train_loss"] < 0.8 * math.log(10) and result["test_accuracy"] > 0.5
    # Each epoch covers the smoke preset's 1,024 training images once, split between the two ranks.
    assert result["images_per_s"] * result["train_time_s"] == pytest.approx(2 * 1024)
    # What the final run measured after its test evaluation, on rank 0 (every check: the reference sweep's).
    assert result["final_evaluation_errors"] == {} and result["latency_ms_p50"] > 0 and result["gflops_per_image"] > 0
    assert (tmp_path / "restarted" / "predictions.npz").is_file()  # beside result.json, out of Train's checkpoint
    assert "test accuracy" in done.stdout  # the command's own summary line
    if server is not None:  # jobs.train --mlflow: the run as one run, its figures, per-epoch history and checkpoint
        client = server.client()
        (run,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
        assert run.info.status == "FINISHED" and run.data.tags["archsweep.model"] == "cnn"
        assert run.data.metrics["test_accuracy"] == result["test_accuracy"] and run.data.params["epochs"] == "2"
        assert [m.value for m in sorted(client.get_metric_history(run.info.run_id, "epoch.val_accuracy"),
                                        key=lambda m: m.step)] == [h["val_accuracy"] for h in result["history"]]
        assert any(a.path == "checkpoint" for a in client.list_artifacts(run.info.run_id))
