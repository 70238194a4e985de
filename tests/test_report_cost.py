"""What it costs (issue 19, the report's side): the comparison's cost columns worked out by hand from the records of a
synthetic sweep (tests/sweep_fixture, timed by tests/timeline_fixture), --price on jobs.sweep and jobs.report, and
the report's "What it costs" section: its prices, verdicts, table and inline figures."""

from __future__ import annotations

import base64
import html
import json
import math
import re
import shutil
from collections.abc import Callable
from datetime import datetime
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import pandas as pd
import pytest

from jobs.report import main as report_main
from jobs.report import write_report
from tests.cli import assert_usage_error, run_in_process
from tests.report_cache import PAGE_RESAMPLES, reports_fixture  # noqa: F401 -- the `reports` fixture
from tests.sweep_fixture import ONNX_REASON
from tune.analysis.comparison import compare
from tune.analysis.results import load_results
from tune.report.cost import cost_section
from tune.report.cost_table import DETECTOR_ONNX, DETECTOR_ONNX_REASON, onnx_phrase
from tune.sweep.prices import DEFAULT_PRICES
from tune.sweep.record import Sweep

CPU_PRICE_S = DEFAULT_PRICES.cpu_hour / 3600  # dollars per CPU-second at the default prices
COST_FIGURES = ("cost-training", "cost-latency", "cost-gflops", "cost-size", "time-to-accuracy")


# A fixture sweep whose trials and retrains recorded when they ran, 3 at a time on 4 CPUs, each holding 1 CPU
# (tests/timeline_fixture: a trial lasts 8 + 12 × its epochs seconds, a retrain its wall_time_s).
TIMED = {"slots": 3, "cpus": 4.0}


@pytest.fixture
def timed_sweep(reports) -> Callable[..., Path]:
    """A fresh copy of a timed fixture sweep at FOLDER, for the test to change (tests/report_cache.py)."""
    return lambda folder, scenario="clear_winner", seeds=3: reports.copy(folder, scenario, seeds, **TIMED)


@pytest.fixture
def built(reports) -> tuple[Path, dict]:
    """clear_winner timed and reported once a session (tests/report_cache.py); tests only read it."""
    return reports.built("clear_winner", **TIMED)


def render(folder: Path) -> dict:
    """write_report for a test that reads the page, not the bootstrap (tests/report_cache.py PAGE_RESAMPLES)."""
    return write_report(folder, n_resamples=PAGE_RESAMPLES)


def table_of(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "comparison.csv").set_index("model")


def held_seconds(record: dict) -> float:
    start, end = (datetime.fromisoformat(record[k]) for k in ("started_at", "finished_at"))
    return (end - start).total_seconds() * record["resources"].get("CPU", 0.0)


def section(html: str, anchor: str) -> str:
    return html.split(f'id="{anchor}"', 1)[1].split("</section>", 1)[0]


# ---- the comparison's cost columns -------------------------------------------------------------------------------

def test_cost_columns_by_hand(built):
    folder, _ = built
    table = table_of(folder)
    # cnn: 4 trials of 3, 3, 3 and 1 epochs (8 + 12 × epochs s each), 3 retrains of 14 s × (0.97, 1, 1.03) + 9.5 s.
    search_s, retrain_s = 3 * 44 + 20, 14 * 3 + 3 * 9.5
    assert (search_s, retrain_s) == (152, 70.5)
    cnn = table.loc["cnn"]
    assert cnn["cpu_s"] == pytest.approx(222.5) and cnn["gpu_s"] == 0
    assert cnn["search_cost_usd"] == pytest.approx(152 * CPU_PRICE_S)
    assert cnn["retrain_cost_usd"] == pytest.approx(70.5 / 3 * CPU_PRICE_S)
    assert cnn["cost_usd"] == pytest.approx(222.5 * CPU_PRICE_S)
    # Every model against its own records, failed alexnet included: its failed trials were paid for too.
    trials = json.loads((folder / "trials.json").read_text())
    for model in ("resnet18", "cnn", "faster_rcnn", "vit", "alexnet"):
        search = sum(held_seconds(t) for t in trials if t["model"] == model)
        retrains = [held_seconds(json.loads(p.read_text())) for p in folder.glob(f"final/{model}/seed*/result.json")]
        assert table.loc[model, "cpu_s"] == pytest.approx(search + sum(retrains))
        assert table.loc[model, "cost_usd"] == pytest.approx((search + sum(retrains)) * CPU_PRICE_S)
        if retrains:
            assert table.loc[model, "retrain_cost_usd"] == pytest.approx(sum(retrains) / 3 * CPU_PRICE_S)
    assert math.isnan(table.loc["alexnet", "retrain_cost_usd"]) and table.loc["alexnet", "cost_usd"] > 0


def test_time_to_targets_from_the_best_trial(built):
    table = table_of(built[0])
    # resnet18's best trial (trial 1): 3 epochs of 152 / 3 s; validation accuracy 0.9145, 0.9779, 0.9908.
    assert table.loc["resnet18", "time_to_98_s"] == pytest.approx(152.0)
    assert table.loc["resnet18", "time_to_99_s"] == pytest.approx(152.0)
    assert table.loc["resnet18", "cost_to_99_usd"] == pytest.approx(152.0 * CPU_PRICE_S)  # the trial held 1 CPU
    assert math.isnan(table.loc["cnn", "time_to_99_s"]) and math.isnan(table.loc["cnn", "cost_to_99_usd"])
    assert table["time_to_995_s"].isna().all()  # nobody reached 99.5%: an empty column says "not reached"
    # The detector is timed on validation mAP@0.5 (0.840 then 0.895 over 2 epochs of 205 s), not on accuracy.
    assert table.loc["faster_rcnn", "time_to_map50_50_s"] == pytest.approx(205.0)
    assert table.loc["faster_rcnn", "time_to_map50_70_s"] == pytest.approx(205.0)
    assert math.isnan(table.loc["faster_rcnn", "time_to_99_s"])


MADE_UP = [{"epoch": 2, "val_accuracy": 0.985, "epoch_time_s": 10.0},  # out of order: sorted by epoch
           {"epoch": 1, "val_accuracy": 0.97, "epoch_time_s": 15.0},
           {"epoch": 3, "val_accuracy": 0.9905, "epoch_time_s": 12.0}]


def test_time_and_cost_to_99_on_a_made_up_history(timed_sweep, tmp_path):
    folder = timed_sweep(tmp_path / "out", "cheap_runner_up", seeds=2)
    trials = json.loads((folder / "trials.json").read_text())
    best = next(t for t in trials if t["trial_id"] == "cnn_00001")
    best.update(history=MADE_UP, resources={"CPU": 2.0, "GPU": 0.5})
    (folder / "trials.json").write_text(json.dumps(trials))
    row = compare(load_results(folder)).frame().set_index("model").loc["cnn"]
    assert (row["time_to_98_s"], row["time_to_99_s"]) == (25.0, 37.0)
    assert math.isnan(row["time_to_995_s"])  # never reached by any model: not reached, not left out
    assert row["cost_to_99_usd"] == pytest.approx(37.0 * (2.0 * 0.031611 + 0.5 * 2.48) / 3600)


def test_without_a_trial_history_the_first_retrain_is_used_and_marked(timed_sweep, tmp_path):
    folder = timed_sweep(tmp_path / "out", "cheap_runner_up", seeds=2)
    trials = json.loads((folder / "trials.json").read_text())
    for trial in trials:
        trial["history"] = [] if trial["model"] == "cnn" else trial["history"]
    (folder / "trials.json").write_text(json.dumps(trials))
    seed0 = folder / "final" / "cnn" / "seed0" / "result.json"
    (seed0.write_text(json.dumps(json.loads(seed0.read_text()) | {"history": MADE_UP})))
    report = render(folder)
    assert report.table.set_index("model").loc["cnn", "time_to_99_s"] == 37.0
    html = report.files["report_html"].read_text()
    assert "<td>37.0 †</td>" in section(html, "cost")
    assert "† from the first retrain&#39;s history for cnn" in section(html, "cost")


# ---- prices --------------------------------------------------------------------------------------------------

def test_default_prices_and_their_source_are_printed(built):
    html = (built[0] / "report.html").read_text()
    prices = section(html, "cost").split('id="cost-prices">', 1)[1].split("</p>", 1)[0]
    assert "$0.031611 per vCPU-hour and $2.48 per GPU-hour" in prices
    assert f"Source: {DEFAULT_PRICES.source}." in prices
    assert "cloud.google.com/compute/vm-instance-pricing" in prices and "2024" in prices
    assert "--price cpu_hour=…,gpu_hour=…" in prices


def test_a_sweep_json_without_prices_still_loads(built):
    folder = built[0]
    assert "prices" not in json.loads((folder / "sweep.json").read_text())
    assert Sweep.load(folder, "test").prices is None  # the defaults


def test_prices_recorded_by_the_sweep_are_used(timed_sweep, tmp_path):
    folder = timed_sweep(tmp_path / "out", "cheap_runner_up", seeds=1)
    sweep = json.loads((folder / "sweep.json").read_text())
    sweep["prices"] = {"cpu_hour": 0.36, "gpu_hour": 3.0, "source": "--price cpu_hour=0.36,gpu_hour=3"}
    (folder / "sweep.json").write_text(json.dumps(sweep))
    report = render(folder)
    row = report.table.set_index("model").loc["cnn"]
    assert row["cost_usd"] == pytest.approx(row["cpu_s"] * 0.36 / 3600)
    assert "Source: --price cpu_hour=0.36,gpu_hour=3." in report.files["report_html"].read_text()


def test_report_price_overrides_the_sweep_for_that_report_only(timed_sweep, tmp_path, capsys):
    folder = timed_sweep(tmp_path / "out", "cheap_runner_up", seeds=1)
    before = (folder / "sweep.json").read_text()
    proc = run_in_process(report_main, [str(folder), "--price", "cpu_hour=3.6, gpu_hour=10"], capsys)
    assert proc.returncode == 0, proc.stderr
    table = table_of(folder)
    assert table.loc["cnn", "cost_usd"] == pytest.approx(table.loc["cnn", "cpu_s"] / 1000)  # 3.6 $/h = 1 $/1000 s
    html = (folder / "report.html").read_text()
    assert "$3.6 per vCPU-hour and $10 per GPU-hour" in html and "Source: --price cpu_hour=3.6, gpu_hour=10." in html
    assert (folder / "sweep.json").read_text() == before


BAD_PRICES = [
    ("cpu_hour", "expected key=value"),
    ("tpu_hour=1", "unknown key 'tpu_hour'"),
    ("cpu_hour=cheap", "cpu_hour must be a number"),
    ("gpu_hour=-1", "finite, non-negative"),
    ("cpu_hour=nan", "finite, non-negative"),
    ("cpu_hour=1,cpu_hour=2", "cpu_hour is given twice"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD_PRICES)
def test_a_bad_price_on_the_report_is_one_error_line(text, fragment, built, capsys):
    assert_usage_error(run_in_process(report_main, [str(built[0]), "--price", text], capsys), "--price", fragment)


@pytest.fixture
def no_ray(monkeypatch):
    """Ray must not be joined or started: a stand-in for connect that stops the sweep right there."""
    import jobs.engine.run.cluster

    def refuse(*args, **kwargs):
        raise RuntimeError("connect was called")

    monkeypatch.setattr(jobs.engine.run.cluster, "connect", refuse)


@pytest.mark.parametrize(("text", "fragment"), BAD_PRICES)
def test_a_bad_price_on_the_sweep_is_one_error_line_before_anything(text, fragment, tmp_path, capsys, mnist_dir,
                                                                     no_ray):
    from jobs.sweep import main as sweep_main

    proc = run_in_process(sweep_main, ["--models", "cnn", "--output", str(tmp_path), "--data-dir", str(mnist_dir),
                                       "--price", text], capsys)
    assert_usage_error(proc, "--price", fragment)
    assert list(tmp_path.iterdir()) == []  # no sweep folder claimed, no `latest`


def test_the_sweep_records_its_price_in_sweep_json(tmp_path, capsys, mnist_dir, monkeypatch):
    import jobs.engine.run.cluster
    import jobs.engine.run.node_check
    import tune.sweep.orchestration
    from jobs.sweep import main as sweep_main

    def stop(*args, **kwargs):
        raise RuntimeError("run_sweep was called")

    # The sweep claims its folder once Ray runs: stand-ins for an embedded Ray, its node check and the sweep.
    monkeypatch.setattr(jobs.engine.run.cluster, "connect", lambda *args, **kwargs: True)
    monkeypatch.setattr(jobs.engine.run.node_check, "check_nodes", lambda *args, **kwargs: None)
    monkeypatch.setattr(tune.sweep.orchestration, "run_sweep", stop)
    with pytest.raises(RuntimeError, match="run_sweep was called"):  # stopped where the training would start
        sweep_main(["--models", "cnn", "--output", str(tmp_path), "--data-dir", str(mnist_dir),
                    "--price", "cpu_hour=0.05,gpu_hour=2.50"])
    record = json.loads((tmp_path / "latest" / "sweep.json").read_text())
    assert record["prices"] == {"cpu_hour": 0.05, "gpu_hour": 2.5, "source": "--price cpu_hour=0.05,gpu_hour=2.50"}


# ---- the section: verdicts, table, figures ----------------------------------------------------------------------

class Images(HTMLParser):
    """Each <img> with the id of the <section> it is in."""

    def __init__(self) -> None:
        super().__init__()
        self.section = ""
        self.images: dict[str, list[dict[str, str]]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "section":
            self.section = found.get("id", "")
        elif tag == "img":
            self.images.setdefault(self.section, []).append(found)


def test_the_sections_figures_are_inline_png(built):
    from PIL import Image

    page = Images()
    page.feed((built[0] / "report.html").read_text())
    for anchor in COST_FIGURES:
        [img] = page.images[anchor]
        assert img["alt"].strip() and img["src"].startswith("data:image/png;base64,"), anchor
        png = Image.open(BytesIO(base64.b64decode(img["src"].split(",", 1)[1])))
        assert png.format == "PNG" and png.width > 300 and png.height > 200, anchor


def test_verdict_lines(reports, built):
    cost = section((built[0] / "report.html").read_text(), "cost")
    assert "<li>Fastest to serve within 0.5 points of the best: resnet18 at 20.5 ms per image</li>" in cost
    assert "<li>Cheapest to train to 99%: resnet18, $0.0013 (152.0 s of training).</li>" in cost
    assert "On the Pareto front of accuracy against total training cost (search + retrains): cnn, resnet18." in cost
    assert ("Serving was measured on cpu with 4 threads, fp32: latency at batch 1 over 100 calls after 10 warm-up "
            "calls (median and 95th percentile), throughput at batch 256 over 3 calls after 1 warm-up; faster_rcnn "
            "per canvas, the others per image.") in cost
    assert "The whole sweep held 2,593 CPU-seconds and 0 GPU-seconds: $0.023" in cost
    # cnn is within half a point of resnet18 here, and nobody reached 99% validation accuracy.
    other = section(reports.built("cheap_runner_up", **TIMED)[1].files["report_html"].read_text(), "cost")
    assert "<li>Fastest to serve within 0.5 points of the best: cnn at 1.86 ms per image</li>" in other
    assert "<li>No architecture reached 99% validation accuracy in the history used" in other


def test_the_table_shows_each_value_or_a_dash(built):
    rows = section((built[0] / "report.html").read_text(), "cost").split('id="cost-table"', 1)[1]
    rows = {row.split("</td>", 1)[0].split(">")[-1]: row for row in rows.split('<td class="l model">')[1:]}
    assert set(rows) == {"resnet18", "cnn", "faster_rcnn ‡", "vit", "alexnet"}
    assert "<td>1.86 / 2.42</td><td>8,605</td><td>0.00422</td><td>1.69</td><td>100.00% · 1.12 ms</td>" in rows["cnn"]
    assert '<td class="wrap">not reached (&gt;\xa014.0\xa0s)</td>' in rows["cnn"]  # never 99% in its 14 s of training
    assert f'title="{ONNX_REASON}">export failed: ExportError</td>' in rows["vit"]
    assert f'title="{DETECTOR_ONNX_REASON}">{DETECTOR_ONNX}</td>' in rows["faster_rcnn ‡"]
    assert DETECTOR_ONNX == "not exported: a detector (box lists, no logits)"
    # A dash only where nothing applies: alexnet never trained; every trained model has a time or says it has none.
    assert rows["alexnet"].count("<td>—</td>") == 7 and "<td>$0.00028</td>" in rows["alexnet"]
    assert {name: cells(row)[5] for name, row in rows.items() if name != "alexnet"} == {
        "resnet18": "152.0", "cnn": "not reached (>\xa014.0\xa0s)", "faster_rcnn ‡": "205.0",
        "vit": "not reached (>\xa061.0\xa0s)"}


def cells(row: str) -> list[str]:
    """The text of a cost-table row's cells after the model's, HTML entities read."""
    after_model = row.split("</td>", 1)[1]
    return [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", after_model)]


def test_no_table_cell_is_cut_and_every_onnx_reason_is_said_in_full(built):
    page = (built[0] / "report.html").read_text()
    every_cell = [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", page, re.S)]
    assert every_cell and not [c for c in every_cell if "…" in c]
    notes = html.unescape(section(page, "cost"))
    assert f"Why vit was not exported to ONNX: {ONNX_REASON}." in notes
    assert f"Why faster_rcnn was not exported to ONNX: {DETECTOR_ONNX_REASON.removeprefix('not exported: ')}." in notes


def test_an_onnx_reason_becomes_a_short_complete_phrase():
    long = "the exporter gave up on this graph because a control-flow branch depends on the input values"
    assert onnx_phrase(long, False) == "not exported: see the note below"
    assert onnx_phrase("not exported: export_onnx is off", False) == "not exported: export_onnx is off"
    assert onnx_phrase("torch.onnx.errors.UnsupportedOperatorError: aten::foo", False) == \
        "export failed: torch.onnx.errors.UnsupportedOperatorError"
    detector = "not exported: the ONNX check covers classifiers (logits [B, C]); this model returns list"
    assert onnx_phrase(detector, True) == DETECTOR_ONNX


def test_a_failed_model_is_left_out_of_the_figures(timed_sweep, tmp_path):
    folder = timed_sweep(tmp_path / "out", "clear_winner", seeds=1)
    sweep = json.loads((folder / "sweep.json").read_text())
    sweep["status"]["vit"].update(status="failed", reason="made to fail after its retrain")  # its results stay
    (folder / "sweep.json").write_text(json.dumps(sweep))
    results = load_results(folder)
    cost = cost_section(compare(results))
    assert cost.curve is not None
    for figure in [*cost.scatters, cost.curve]:
        assert figure.png and "vit" not in figure.models and "resnet18" in figure.models, figure.anchor
    assert "alexnet" not in cost.curve.models


def test_one_model_and_one_epoch_are_said_not_drawn_empty(timed_sweep, tmp_path):
    folder = timed_sweep(tmp_path / "out", "cheap_runner_up", seeds=1)
    sweep = json.loads((folder / "sweep.json").read_text())
    sweep["status"]["resnet18"].update(status="failed", reason="out of memory")
    (folder / "sweep.json").write_text(json.dumps(sweep))
    trials = json.loads((folder / "trials.json").read_text())
    for trial in trials:
        trial["history"] = trial["history"][:1]  # as the quick preset's one-epoch trials
    (folder / "trials.json").write_text(json.dumps(trials))
    html = Path(render(folder).files["report_html"]).read_text()
    page = Images()
    page.feed(html)
    for anchor in COST_FIGURES[:4]:
        assert anchor not in page.images and "<p class=\"note\">Only cnn has " in section(html, anchor), anchor
    assert "Only cnn has a serving latency (1.80 ms): a trade-off needs two models" in section(html, "cost-latency")
    assert "Only cnn has a training cost ($0.0" in section(html, "cost-training")
    assert len(page.images["time-to-accuracy"]) == 1
    assert "history has one epoch, so each is one point" in section(html, "time-to-accuracy")


def test_nothing_trained_has_no_cost_figure(timed_sweep, tmp_path):
    folder = timed_sweep(tmp_path / "out", "close_call", seeds=1)
    sweep = json.loads((folder / "sweep.json").read_text())
    for status in sweep["status"].values():
        status.update(status="failed", reason="ran out of memory")
    (folder / "sweep.json").write_text(json.dumps(sweep))
    shutil.rmtree(folder / "final")
    html = Path(render(folder).files["report_html"]).read_text()
    cost = section(html, "cost")
    assert "No architecture finished training, so there is no serving or training cost to compare." in cost
    assert "<img" not in cost and not any(f'id="{anchor}"' in html for anchor in COST_FIGURES)
    assert "The whole sweep held" in cost  # the search still cost something


def test_at_zero_prices_the_training_cost_figure_uses_resource_seconds(timed_sweep, tmp_path, capsys):
    folder = timed_sweep(tmp_path / "out", "cheap_runner_up", seeds=1)
    assert run_in_process(report_main, [str(folder), "--price", "cpu_hour=0,gpu_hour=0"], capsys).returncode == 0
    page = Images()
    page.feed((folder / "report.html").read_text())
    [img] = page.images["cost-training"]
    assert "against CPU-seconds held: search + retrains" in img["alt"]


def test_a_target_not_reached_says_how_long_it_tried_and_a_dash_means_nothing_to_time(timed_sweep, tmp_path):
    folder = timed_sweep(tmp_path / "out", "cheap_runner_up", seeds=1)
    trials = json.loads((folder / "trials.json").read_text())
    for trial in trials:
        if trial["model"] == "cnn":  # checks within an epoch, the clock only on the last (no epoch time before it)
            trial["history"] = [{"epoch": 0.5, "val_accuracy": 0.95, "epoch_time_s": None},
                                {"epoch": 1, "val_accuracy": 0.97, "epoch_time_s": 9.5, "train_time_s": 9.5}]
        else:  # resnet18 kept no history anywhere
            trial["history"] = []
    (folder / "trials.json").write_text(json.dumps(trials))
    for path in folder.glob("final/resnet18/seed*/result.json"):
        path.write_text(json.dumps(json.loads(path.read_text()) | {"history": []}))
    rows = section(Path(render(folder).files["report_html"]).read_text(), "cost").split('id="cost-table"')[1]
    rows = {row.split("</td>", 1)[0].split(">")[-1]: row for row in rows.split('<td class="l model">')[1:]}
    assert cells(rows["cnn"])[5] == "not reached (>\xa09.5\xa0s)"
    assert cells(rows["resnet18"])[5] == "not recorded"


def test_every_figure_labels_the_detector_per_canvas_where_the_table_does(timed_sweep, tmp_path):
    folder = timed_sweep(tmp_path / "out", "clear_winner", seeds=1)
    results = load_results(folder)
    figures = {f.anchor: f for f in cost_section(compare(results)).scatters}
    per_canvas = {"cost-latency", "cost-gflops"}  # the table's ‡: latency, throughput and GFLOPs are per canvas
    for anchor, figure in figures.items():
        label = next(label for label in figure.labels if label.startswith("faster_rcnn"))
        assert label == ("faster_rcnn (per canvas)" if anchor in per_canvas else "faster_rcnn"), anchor
        assert ("faster_rcnn: per canvas, the others per image." in figure.caption) == (anchor in per_canvas)
