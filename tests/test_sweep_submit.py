"""The smoke sweep of all six architectures, submitted with `ray job submit` to a token-auth head on 127.0.0.1.

The command is the RayJob's entrypoint (k8s/base) with the smoke preset and the volume's paths under tmp_path:
what this test runs is what KubeRay runs in the cluster.
"""

import json
import sys
from pathlib import Path

import models
from tests.conftest import REPO
from tests.k8s_helpers import ENTRYPOINT, as_local_command, rayjob_entrypoint
from tests.ray_head import ray_head, submit

RAY = str(Path(sys.executable).parent / "ray")
OUTPUT_FILES = ("sweep.json", "trials.json", "comparison.csv", "comparison.json", "comparison.md", "report.html")


def test_the_cluster_command_runs_locally_with_only_its_values_changed(tmp_path):
    cluster = rayjob_entrypoint()
    assert cluster == ENTRYPOINT.split()
    local = as_local_command(cluster, "smoke", tmp_path / "results")
    changed = {(a, b) for a, b in zip(cluster, local, strict=True) if a != b}
    assert changed == {("full", "smoke"), ("/results", str(tmp_path / "results")),
                       ("/results/report", str(tmp_path / "results" / "report"))}


def test_smoke_sweep_of_every_architecture_through_ray_job_submit(mnist_dir, tmp_path):
    command = as_local_command(rayjob_entrypoint(), "smoke", tmp_path / "results")
    output = Path(command[command.index("--output") + 1])
    # No ImageNet weights in TORCH_HOME: vgg16 and alexnet must come out as rows that say why, not as a crash.
    # A dead proxy on 127.0.0.1 makes the weights download fail at once without any traffic leaving the machine.
    env_vars = {"MNIST_DATA_DIR": str(mnist_dir), "TORCH_HOME": str(tmp_path / "torch-home"),
                "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "",
                "NO_PROXY": ""}
    with ray_head() as (url, env):
        submitted = submit(
            [RAY, "job", "submit", "--address", url, "--submission-id", "sweep-smoke", "--working-dir", str(REPO),
             "--runtime-env-json", json.dumps({"env_vars": env_vars}), "--",
             *command],
            env)
    assert submitted.returncode == 0, submitted.stdout[-4000:] + submitted.stderr[-3000:]
    for name in OUTPUT_FILES:
        assert (output / name).is_file(), name
    # --storage took Tune's trials and checkpoints onto the "volume", beside the report.
    sweep = json.loads((output / "sweep.json").read_text())
    assert sweep["storage"] == str(tmp_path / "results") and sweep["samples"] == 1
    assert (tmp_path / "results" / sweep["name"] / "cnn").is_dir()
    rows = {row["model"]: row for row in json.loads((output / "comparison.json").read_text())}
    assert set(rows) == set(models.model_names())
    for name in ("vgg16", "alexnet"):
        assert rows[name]["status"] == "failed" and "ImageNet weights not found" in rows[name]["reason"]
    trained = [r for name, r in rows.items() if name not in ("vgg16", "alexnet")]
    # One small smoke epoch is a plumbing check: every model yields real test metrics, the best beats chance.
    assert all(r["status"] == "ok" and 0 <= r["test_accuracy"] <= 1 and r["params"] > 0 for r in trained), trained
    assert max(r["test_accuracy"] for r in trained) > 0.2
    assert rows["faster_rcnn"]["test_map_50"] is not None
    html = (output / "report.html").read_text()
    assert all(name in html for name in models.model_names())
