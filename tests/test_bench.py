"""`python -m jobs.bench` end to end at the smallest sizes its flags allow: the sections it writes, and its errors.

The GPU section's code runs here on the CPU (`--gpu-device cpu`, a dry run: no capture, no CUDA); the figures
themselves are for `make bench` on a GPU, never for a timed test. The command runs in this process (tests/cli.py
run_in_process: the same entry point and error handling), but for one real `python -m jobs.bench`, the cheapest
(test_bench_rejects_bad_sizes), which proves the module's __main__ path."""

import re

import pytest
import torch

from jobs.bench import main
from jobs.engine.bench.cpu import BEGIN, END, write_section
from jobs.engine.bench.gpu import GPU_BEGIN, GPU_END
from tests.cli import assert_usage_error, run_in_process, run_module

# Every size at its smallest (a timed epoch of one image, one timed round, one race epoch on one image): the test
# proves what the command writes, not how fast anything is.
TINY = ["--images", "2", "--batch-size", "2", "--rounds", "1", "--loader-workers", "0", "--gpu-loader-workers-max", "0",
        "--race-epochs", "1", "--race-images", "1"]


@pytest.mark.slow  # 15 s of measured epochs: over the fast tier's ~5 s a test
def test_bench_writes_both_sections_and_keeps_the_rest(mnist_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\nHand-written notes stay.\n")
    monkeypatch.setenv("MNIST_DATA_DIR", str(mnist_dir))  # the data folder as `make bench` finds it
    proc = run_in_process(main, [*TINY, "--sections", "both", "--gpu-device", "cpu", "--out", str(out)], capsys)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout
    text = out.read_text()
    assert "Hand-written notes stay." in text
    cpu = text.split("<!-- bench:loop:begin -->")[1].split("<!-- bench:loop:end -->")[0]
    gpu = text.split("<!-- bench:gpu:begin -->")[1].split("<!-- bench:gpu:end -->")[0]
    assert "(CPU)" in cpu and len(re.findall(r"\*\*[\d.]+×\*\*", cpu)) == 2  # one speed-up per augmentation row
    assert "torch " in gpu and "CPU" in gpu  # the device and the torch version go with the figures
    assert len(re.findall(r"\*\*[\d.]+×\*\*", gpu)) == 4  # recipe and tuned recipe, per augmentation row
    assert "Time to 99% test accuracy" in gpu and "on all 1 training images" in gpu and "Capture" in gpu


def test_a_rewrite_replaces_its_section_only(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    write_section(out, f"{GPU_BEGIN}\nold\n{GPU_END}", GPU_BEGIN, GPU_END)
    write_section(out, f"{BEGIN}\ncpu\n{END}")
    write_section(out, f"{GPU_BEGIN}\nnew\n{GPU_END}", GPU_BEGIN, GPU_END)
    text = out.read_text()
    assert text.count(GPU_BEGIN) == 1 and "new" in text and "old" not in text and "cpu" in text


def test_bench_without_data_is_one_error_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", "")
    proc = run_in_process(main, ["--sections", "cpu", "--out", str(tmp_path / "B.md")], capsys)
    assert_usage_error(proc, "make bench needs local MNIST files")
    proc = run_in_process(main, ["--sections", "cpu", "--data-dir", str(tmp_path / "absent"),
                                 "--out", str(tmp_path / "B.md")], capsys)
    assert_usage_error(proc, "data folder does not exist")
    assert not (tmp_path / "B.md").exists()


@pytest.mark.process
def test_bench_rejects_bad_sizes(mnist_dir):
    # The one real `python -m jobs.bench` of the suite: it stops at its flags, before any data or benchmark.
    assert_usage_error(run_module("jobs.bench", "--images", "0", "--data-dir", str(mnist_dir)), "--images must be >= 1")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_gpu_section_without_a_gpu_is_one_error_line(mnist_dir, capsys):
    assert_usage_error(run_in_process(main, ["--sections", "gpu", "--data-dir", str(mnist_dir)], capsys),
                       "no CUDA device is visible")


def test_bench_serving_flag_errors_are_one_line(capsys):
    from jobs.bench_serving import main as serving_main

    assert_usage_error(run_in_process(serving_main, ["--models", "lenet"], capsys), "--models: unknown lenet")
    assert_usage_error(run_in_process(serving_main, ["--threads", "0"], capsys), "--threads must be >= 1")
