"""`ray job submit` of the train job to a real Ray head on 127.0.0.1 with token authentication on."""

import json
import subprocess

import pytest

from tests.paths import REPO
from tests.ray_head import RAY, submit


@pytest.mark.slow
def test_ray_job_submit_trains_cnn_and_writes_result(ray_head_cluster, mnist_dir, tmp_path):
    url, env = ray_head_cluster
    output = tmp_path / "results"
    runtime_env = json.dumps({"env_vars": {"MNIST_DATA_DIR": str(mnist_dir)}})
    submitted = submit(
        [RAY, "job", "submit", "--address", url, "--submission-id", "cnn-smoke", "--working-dir", str(REPO),
         "--runtime-env-json", runtime_env, "--",
         "python", "-m", "jobs.train", "--model", "cnn", "--preset", "smoke", "--output", str(output),
         "--name", "submitted"],
        env)
    status = subprocess.run([RAY, "job", "status", "--address", url, "cnn-smoke"], env=env,
                            capture_output=True, text=True, timeout=60)
    without_token = subprocess.run(
        [RAY, "job", "list", "--address", url], capture_output=True, text=True, timeout=60,
        env={k: v for k, v in env.items() if k != "RAY_AUTH_TOKEN"} | {"HOME": str(tmp_path)})
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:]
    assert "succeeded" in (status.stdout + status.stderr).lower()
    # Token auth really is on: the same client without the token is turned away.
    assert without_token.returncode != 0
    result = json.loads((output / "submitted" / "result.json").read_text())
    assert result["model"] == "cnn" and result["epochs"] == 1
    assert 0.3 < result["test_accuracy"] <= 1.0
    assert "test accuracy" in submitted.stdout  # the job's own summary line reached the submitter
