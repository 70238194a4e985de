"""Data parallelism through Ray Train on CPU (gloo): sizing the workers, the loss over ranks, a 2-worker run."""

import json
import math
from pathlib import Path

import pytest
import ray.train
import torch
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from jobs.engine import cluster
from jobs.engine.cluster import Workers, plan_workers
from jobs.engine.errors import UsageError
from jobs.engine.loop import mean_over_ranks
from jobs.train import main as train_main
from tests.cli import assert_usage_error, run_in_process


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


def mean_on_every_rank(config: dict) -> None:
    """Each rank averages its own loss sum with the others' and writes what it got."""
    context = ray.train.get_context()
    rank = context.get_world_rank()
    mean = mean_over_ranks(torch.tensor(config["sums"][rank]), config["per_rank"], context.get_world_size())
    Path(config["folder"], f"rank{rank}.json").write_text(json.dumps(mean))  # the workers run on this machine


@pytest.mark.slow
def test_the_loss_is_averaged_over_the_samples_of_every_rank(ray_local, tmp_path):
    # Rank 0 saw 5 samples with a loss of 2 each, rank 1 five with 6 each: every rank must report 4, not its own.
    sums = [10.0, 30.0]
    TorchTrainer(mean_on_every_rank,
                 train_loop_config={"sums": sums, "per_rank": 5, "folder": str(tmp_path)},
                 scaling_config=ScalingConfig(num_workers=2, use_gpu=False, resources_per_worker={"CPU": 1}),
                 run_config=RunConfig(name="mean", storage_path=str(tmp_path / "storage"))).fit()
    assert [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)] == [4.0, 4.0]


@pytest.mark.slow
def test_two_workers_train_one_model_and_only_rank_0_reports(smoke_run, train_events):
    result = smoke_run("cnn", ["epochs=2"], workers=2)
    assert result["env"]["workers"] == 2 and result["env"]["use_gpu"] is False
    events = train_events()
    assert len(events) == 2, events  # one report per epoch, no failure
    for epoch, event in enumerate(events, start=1):
        rank_0, rank_1 = event["reports"]
        # Rank 1 trains its half and joins the report barrier; only rank 0 evaluates and checkpoints.
        assert rank_0["epoch"] == epoch and rank_1 == {} and event["checkpoint"]
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    assert result["history"][-1]["train_loss"] < 0.8 * math.log(10)
    assert result["test_accuracy"] > 0.5
    # Each epoch covers the smoke preset's 1,024 training images once, split between the two ranks.
    assert result["images_per_s"] * result["train_time_s"] == pytest.approx(2 * 1024)
