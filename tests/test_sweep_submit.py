"""The sweep submitted with `ray job submit` to a token-auth head on 127.0.0.1: the suite's one `ray job submit`.

The command is the RayJob's entrypoint (k8s/base) with the smoke preset and the volume's paths under tmp_path,
narrowed to one small architecture: what this test runs is what KubeRay runs in the cluster.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest

from jobs.engine.run.storage import PROBE_PREFIX
from tests.k8s_helpers import ENTRYPOINT, as_local_command, rayjob_entrypoint
from tests.paths import REPO
from tests.ray_head import RAY, submit
from tests.s3_server import session_s3_server
from tune.analysis.comparison import fmt_accuracy

OUTPUT_FILES = ("sweep.json", "trials.json", "comparison.csv", "comparison.json", "comparison.md", "report.html")


@pytest.mark.process
def test_the_cluster_command_runs_locally_with_only_its_values_changed(tmp_path):
    cluster = rayjob_entrypoint()
    assert cluster == ENTRYPOINT.split()
    local = as_local_command(cluster, "smoke", tmp_path / "results")
    changed = {(a, b) for a, b in zip(cluster, local, strict=True) if a != b}
    assert changed == {("full", "smoke"), ("/results", str(tmp_path / "results"))}


@pytest.mark.slow
@pytest.mark.process  # the S3 server
def test_the_cluster_command_through_ray_job_submit_to_a_token_auth_head(ray_head_cluster, ray_local, mnist_dir,
                                                                       tmp_path, capsys, monkeypatch, request):
    # The RayJob's entrypoint at the smoke preset for one architecture, small: what a sweep does on a cluster it
    # joins through `ray job submit` (every architecture, the grid, failures and ASHA are the session's reference
    # sweep's, tests/test_reference_sweep.py). A dead proxy and an empty NO_PROXY in the job's own env_vars: the
    # sweep must not route Ray's traffic through the proxy, nor ask Ray to merge its env_vars with the job's.
    # Tune's trials go to a bucket of a real S3-compatible server (--storage s3://...), its endpoint and keys in the
    # job's env_vars, as README says.
    command = [*as_local_command(rayjob_entrypoint(), "smoke", tmp_path / "results"), "--models", "cnn",
               "--set", "train_limit=256", "--set", "val_limit=128", "--set", "test_limit=200",
               "--set", "export_onnx=false", "--set", "robustness_images=0"]
    s3 = session_s3_server(request.config)
    storage = f"s3://{s3.create_bucket('submitted')}/archsweep"
    command += ["--storage", storage]
    volume = Path(command[command.index("--output") + 1])
    env_vars = {"MNIST_DATA_DIR": str(mnist_dir), "https_proxy": "http://127.0.0.1:9",
                "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": "", **s3.env()}
    url, env = ray_head_cluster.url, ray_head_cluster.env
    submitted = submit(
        [RAY, "job", "submit", "--address", url, "--submission-id", "sweep-smoke", "--working-dir", str(REPO),
         "--runtime-env-json", json.dumps({"env_vars": env_vars}), "--", *command],
        env)
    status = subprocess.run([RAY, "job", "status", "--address", url, "sweep-smoke"], env=env,
                            capture_output=True, text=True, timeout=60)
    without_token = subprocess.run(
        [RAY, "job", "list", "--address", url], capture_output=True, text=True, timeout=60,
        env={k: v for k, v in env.items() if k != "RAY_AUTH_TOKEN"} | {"HOME": str(tmp_path)})
    assert submitted.returncode == 0, submitted.stdout[-4000:] + submitted.stderr[-3000:]
    assert "succeeded" in (status.stdout + status.stderr).lower()
    # Token auth really is on: the same client without the token is turned away.
    assert without_token.returncode != 0
    # The sweep's own folder on the "volume", and `latest` pointing to it.
    (output,) = [p for p in volume.iterdir() if not p.is_symlink()]
    assert (volume / "latest").resolve() == output
    for name in OUTPUT_FILES:
        assert (output / name).is_file(), name
    sweep = json.loads((output / "sweep.json").read_text())
    # Tune's trials went to the bucket: each trial's results; their checkpoints were there until cnn's best trial was
    # chosen (tune/sweep/trial_checkpoints.py), and the check's probe object is gone. The retrain, with its checkpoint,
    # and the records stay in the sweep folder.
    assert sweep["storage"] == storage and not (output / "tune").exists()
    stored = s3.files(f"submitted/archsweep/{sweep['name']}")
    trials = json.loads((output / "trials.json").read_text())
    assert len([k for k in stored if k.startswith("cnn/") and k.endswith("/progress.csv")]) == len(trials) > 0
    assert not [k for k in stored if "checkpoint_" in k] and not [k for k in s3.files("submitted") if PROBE_PREFIX in k]
    assert re.search(r"cnn: best trial chosen; its trials' checkpoints removed \([1-9]", submitted.stdout)
    assert (output / "final" / "cnn" / "seed0" / "checkpoint").is_dir()
    # The driver joined the head's cluster (8 logical CPUs) rather than starting a Ray of its own.
    assert sweep["cluster_resources"]["CPU"] == 8 and 0 < sweep["cluster_busy"] <= 1
    (row,) = json.loads((output / "comparison.json").read_text())
    assert row["model"] == "cnn" and row["status"] == "ok" and row["test_accuracy"] > 0.25, row
    html = (output / "report.html").read_text()
    assert fmt_accuracy(row["test_accuracy"], row["test_accuracy_std"]) in html
    assert f"report: {output / 'report.html'}" in submitted.stdout  # the job's own summary reached the submitter

    # The same command again, as KubeRay runs it after a lost head (backoffLimit): it continues the named sweep
    # (in this process, on the session's Ray: the cheap form of a second cluster), and retrains nothing.
    assert output.name == command[command.index("--name") + 1]
    kept = {name: (output / name).read_bytes() for name in ("trials.json", "final/cnn/seed0/result.json")}
    for key, value in s3.env().items():  # this process resumes the sweep: it checks and reads the bucket
        monkeypatch.setenv(key, value)
    from jobs.sweep import main as sweep_main

    assert sweep_main([*command[3:], "--data-dir", str(mnist_dir)]) == 0
    again = capsys.readouterr().out
    assert f"resuming sweep {output.name} in {output}" in again and "cnn: already done in this sweep, kept" in again
    assert "retraining the best" not in again and "  cnn trial " not in again, again[-2000:]
    assert "cnn seed 0: epoch" not in again and "continuing its search" not in again
    assert {name: (output / name).read_bytes() for name in kept} == kept
    assert [p for p in volume.iterdir() if not p.is_symlink()] == [output]  # no second sweep folder

    # Killed before cnn's search ended: a resume restores that search from the bucket and runs no trial again.
    record = json.loads((output / "sweep.json").read_text())
    record["status"]["cnn"] = {"status": "running"}
    (output / "sweep.json").write_text(json.dumps(record))
    assert sweep_main(["--resume", str(output), "--data-dir", str(mnist_dir)]) == 0
    restored = capsys.readouterr().out
    assert f"continuing its search from {storage}/{output.name}/cnn" in restored, restored[-2000:]
    assert "  cnn trial " not in restored and json.loads((output / "trials.json").read_text()) == trials
