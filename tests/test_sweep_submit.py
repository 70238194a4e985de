"""The smoke sweep of all six architectures, submitted with `ray job submit` to a token-auth head on 127.0.0.1.

The command is the RayJob's entrypoint (k8s/base) with the smoke preset and the volume's paths under tmp_path:
what this test runs is what KubeRay runs in the cluster.
"""

import json
from datetime import datetime
from pathlib import Path

import pytest

import models
from tests.k8s_helpers import ENTRYPOINT, as_local_command, rayjob_entrypoint
from tests.paths import REPO
from tests.ray_head import RAY, submit
from tune.comparison import fmt_accuracy

OUTPUT_FILES = ("sweep.json", "trials.json", "comparison.csv", "comparison.json", "comparison.md", "report.html")


def test_the_cluster_command_runs_locally_with_only_its_values_changed(tmp_path):
    cluster = rayjob_entrypoint()
    assert cluster == ENTRYPOINT.split()
    local = as_local_command(cluster, "smoke", tmp_path / "results")
    changed = {(a, b) for a, b in zip(cluster, local, strict=True) if a != b}
    assert changed == {("full", "smoke"), ("/results", str(tmp_path / "results"))}


@pytest.mark.slow
def test_smoke_sweep_of_every_architecture_through_ray_job_submit(ray_head_cluster, mnist_dir, tmp_path):
    command = as_local_command(rayjob_entrypoint(), "smoke", tmp_path / "results")
    volume = Path(command[command.index("--output") + 1])
    # No ImageNet weights in TORCH_HOME: vgg16 and alexnet must come out as rows that say why, not as a crash.
    # A dead proxy on 127.0.0.1 makes the weights download fail at once without any traffic leaving the machine.
    env_vars = {"MNIST_DATA_DIR": str(mnist_dir), "TORCH_HOME": str(tmp_path / "torch-home"),
                "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "",
                "NO_PROXY": ""}
    url, env = ray_head_cluster
    submitted = submit(
        [RAY, "job", "submit", "--address", url, "--submission-id", "sweep-smoke", "--working-dir", str(REPO),
         "--runtime-env-json", json.dumps({"env_vars": env_vars}), "--",
         *command],
        env)
    assert submitted.returncode == 0, submitted.stdout[-4000:] + submitted.stderr[-3000:]
    # The sweep's own folder on the "volume", and `latest` pointing to it.
    (output,) = [p for p in volume.iterdir() if not p.is_symlink()]
    assert (volume / "latest").resolve() == output
    for name in OUTPUT_FILES:
        assert (output / name).is_file(), name
    # Tune's trials and checkpoints went onto the volume too, inside the sweep's folder.
    sweep = json.loads((output / "sweep.json").read_text())
    # No --storage: "" recorded, the sweep folder's own tune/ wherever the folder is (a copy resumes itself).
    assert sweep["storage"] == "" and (output / "tune").is_dir()
    assert sweep["samples"] == 1 and sweep["name"] == output.name
    assert (output / "tune" / sweep["name"] / "cnn").is_dir()
    rows = {row["model"]: row for row in json.loads((output / "comparison.json").read_text())}
    assert set(rows) == set(models.model_names())
    for name in ("vgg16", "alexnet"):
        assert rows[name]["status"] == "failed" and "ImageNet weights not found" in rows[name]["reason"]
    # One small smoke epoch is a plumbing check, but every trained model must have learnt something: the floors
    # sit well below what these seeded runs reach (BENCHMARKS.md) and well above chance (10%).
    floors = {"cnn": 0.25, "vit": 0.4, "resnet18": 0.15}
    for name, floor in floors.items():
        assert rows[name]["status"] == "ok" and rows[name]["test_accuracy"] > floor, rows[name]
        assert rows[name]["params"] > 0 and rows[name]["images_per_s"] > 0
    assert rows["faster_rcnn"]["status"] == "ok" and rows["faster_rcnn"]["test_map_50"] > 0.01, rows["faster_rcnn"]
    html = (output / "report.html").read_text()
    for name in floors:  # each trained model's own accuracy is in the report, not only its name
        assert fmt_accuracy(rows[name]["test_accuracy"], rows[name]["test_accuracy_std"]) in html, name
    assert html.count("ImageNet weights not found") >= 2
    assert 'id="timeline"' in html

    # Every architecture is searched at the same time: on this 8-CPU head, trials of different ones overlap.
    trials = json.loads((output / "trials.json").read_text())
    spans = [(t["model"], datetime.fromisoformat(t["started_at"]), datetime.fromisoformat(t["finished_at"]))
             for t in trials]
    overlapping = {frozenset((a, b)) for a, start_a, end_a in spans for b, start_b, end_b in spans
                   if a != b and start_a < end_b and start_b < end_a}
    assert overlapping, spans
    assert all(t["resources"] == {"CPU": 1.0} for t in trials)
    # Each trial's start-up (its start to its first training step) is recorded, and lies within the trial.
    for (_, start, end), trial in zip(spans, trials, strict=True):
        assert 0 <= trial["startup_s"] < (end - start).total_seconds(), trial
    assert sweep["cluster_resources"]["CPU"] == 8 and 0 < sweep["cluster_busy"] <= 1
