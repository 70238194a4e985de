"""`python -m jobs.report SWEEP --mlflow URI` sends a finished sweep to a real MLflow server (tests/mlflow_server.py):
one parent run with the sweep's flags, report and comparison; a nested run per trials.json entry, with every check's
figures, and per retrain, with its result.json figures, checkpoint and ONNX model as an MLflow model; the winner
registered. Run twice, it adds nothing. And `jobs.train --mlflow`'s one run, from a retrain's folder."""

from __future__ import annotations

import json

import pytest

from jobs.report import main
from tests.cli import run_in_process
from tests.mlflow_server import keep_no_proxy, nested, session_mlflow_server
from tests.reference_sweep import TRAINED, copy_of
from tune.track.single_run import log_run
from tune.track.tracker import Tracker

pytestmark = [pytest.mark.slow, pytest.mark.process]  # the session's reference sweep, and a server process


@pytest.fixture
def server(request, monkeypatch):
    keep_no_proxy(monkeypatch)
    return session_mlflow_server(request.config)


def kinds(children: list, kind: str) -> list:
    return [r for r in children if r.data.tags.get("archsweep.kind") == kind]


def share_a_trial_id(folder) -> None:
    """Give each architecture's first trial the same id, as Tune does by chance (its ids are unique within one
    search: architectures' Tuners made in the same instant share a prefix), in FOLDER's trials.json and sweep.json."""
    trials, sweep = json.loads((folder / "trials.json").read_text()), json.loads((folder / "sweep.json").read_text())
    shared, seen = trials[0]["trial_id"], set()
    for trial in trials:
        if trial["model"] not in seen:
            seen.add(trial["model"])
            status = sweep["status"][trial["model"]]
            if status.get("best_trial_id") == trial["trial_id"]:
                status["best_trial_id"] = shared
            trial["trial_id"] = shared
    assert len(seen) >= 3
    (folder / "trials.json").write_text(json.dumps(trials))
    (folder / "sweep.json").write_text(json.dumps(sweep))


def test_a_finished_sweep_is_logged_once_as_a_parent_with_a_run_per_trial_and_retrain(
        reference_sweep, server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "reference")
    folder = copy_of(reference_sweep, tmp_path) / reference_sweep.folder.name
    share_a_trial_id(folder)
    said = []
    for _ in range(2):  # the second adds nothing, and says so
        done = run_in_process(main, [str(folder), "--mlflow", server.uri, "--register", "archsweep-reference"],
                              capsys)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        said.append(next(line for line in done.stdout.splitlines() if " logged to " in line))
    parent, children = nested(server, "reference")
    assert said[0].endswith(f"({len(children)} nested runs added, 0 already there)"), said
    assert said[1].endswith(f"(0 nested runs added, {len(children)} already there)"), said
    client = server.client()
    assert parent.info.status == "FINISHED" and parent.data.params["preset"] == "smoke"
    assert parent.data.params["search"] == "grid" and json.loads(parent.data.params["models"]) == list(
        reference_sweep.load("sweep.json")["models"])
    assert {"report.html", "comparison.csv", "comparison.json", "comparison.md", "plan.json", "sweep.json",
            "trials.json"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}

    # A run per trials.json entry (the failed ones too, FAILED), each check's figures at step = its place.
    trials = {(t["model"], t["trial_id"]): t for t in json.loads((folder / "trials.json").read_text())}
    runs = {(r.data.tags["archsweep.model"], r.data.tags["archsweep.trial_id"]): r for r in kinds(children, "trial")}
    assert sorted(runs) == sorted(trials) and len(kinds(children, "trial")) == len(trials)
    for key, trial in trials.items():
        run = runs[key]
        assert run.info.status == ("FAILED" if trial["status"] == "failed" else "FINISHED"), trial
        assert {k: str(v) for k, v in trial["config"].items()} == run.data.params
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
            (step, check["val_accuracy"]) for step, check in enumerate(trial["history"], start=1)
            if check.get("val_accuracy") is not None]

    # A run per retrain, its figures, checkpoint and ONNX model (an MLflow model with a signature and an example).
    retrains = {(r.data.tags["archsweep.model"], int(r.data.tags["archsweep.seed"])): r
                for r in kinds(children, "retrain")}
    assert sorted(retrains) == sorted((m, 0) for m in TRAINED) and len(children) == len(trials) + len(retrains)
    import mlflow

    mlflow.set_tracking_uri(server.uri)
    for (model, seed), run in retrains.items():
        result = json.loads((folder / "final" / model / f"seed{seed}" / "result.json").read_text())
        assert run.info.status == "FINISHED" and run.data.metrics["test_accuracy"] == result["test_accuracy"]
        assert run.data.metrics["robustness.blur"] == result["robustness"]["blur"] or model == "faster_rcnn"
        assert run.data.params["lr"] == str(result["config"]["lr"])
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")}
        assert "checkpoint/checkpoint.pt" in artifacts, artifacts
        if (folder / "final" / model / f"seed{seed}" / "model.onnx").is_file():
            info = mlflow.models.get_model_info(run.data.tags["archsweep.model_uri"])
            assert "onnx" in info.flavors and info.signature is not None and info.saved_input_example_info
            assert info.run_id == run.info.run_id
    assert [r for (m, _), r in retrains.items() if m in ("cnn", "vit")
            and "archsweep.model_uri" in r.data.tags], "no ONNX model logged"

    # The winner registered once, from its retrain's run.
    versions = client.search_model_versions("name = 'archsweep-reference'")
    assert len(versions) == 1 and versions[0].run_id in {r.info.run_id for r in retrains.values()}


def test_a_single_runs_folder_is_one_run_with_its_figures_and_onnx_model(reference_sweep, server, monkeypatch,
                                                                        capsys):
    # jobs.train --mlflow logs its run's folder (result.json, checkpoint, model.onnx) so: a retrain's has the same.
    # The experiment named to the tracker, not in the environment (as the default `archsweep` is): the ONNX model
    # must land in it too, not in MLflow's process-wide "Default".
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    run_folder = reference_sweep.folder / "final" / "cnn" / "seed0"
    assert log_run(Tracker(server.uri, experiment="single", what="the run"), run_folder)
    client = server.client()
    (run,) = client.search_runs([client.get_experiment_by_name("single").experiment_id])
    result = json.loads((run_folder / "result.json").read_text())
    assert run.info.status == "FINISHED" and run.data.tags["archsweep.model"] == "cnn"
    assert run.data.metrics["test_accuracy"] == result["test_accuracy"] and run.data.params["lr"] == "0.003"
    epochs = client.get_metric_history(run.info.run_id, "epoch.val_accuracy")
    assert [m.value for m in epochs] == [h["val_accuracy"] for h in result["history"]]
    assert run.data.tags["archsweep.model_uri"].startswith("models:/")
    import mlflow

    mlflow.set_tracking_uri(server.uri)
    model_id = mlflow.models.get_model_info(run.data.tags["archsweep.model_uri"]).model_id
    assert client.get_logged_model(model_id).experiment_id == run.info.experiment_id
    assert "mlflow: seed0 logged to" in capsys.readouterr().out
