"""The sweep's report from stored results: the comparison table, Pareto, the generated verdict, the self-contained
HTML and `python -m jobs.report`. Synthetic sweep folders stand in for training (tests/sweep_fixture). The statistics,
search, error, calibration and robustness sections are tests/test_report_trust.py's."""

from __future__ import annotations

import base64
import json
import math
import shutil
import statistics
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import pandas as pd
import pytest

from jobs.report import main, write_report
from tests.cli import assert_usage_error, run_in_process, run_module
from tests.sweep_fixture import FAILED_REASON, N_TEST, write_sweep
from tests.timeline_fixture import stamp_timeline
from tune.significance import matched_mcnemar
from tune.stats import pareto_front

SECTIONS = ("summary", "comparison-table", "statistics", "search", "search-learned", "validation-curves", "pareto",
            "accuracy-vs-params", "confusion-matrices", "per-class-f1", "errors", "calibration", "robustness",
            "failures")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Each scenario written and reported once; tests only read these folders."""
    out = {}
    for scenario in ("clear_winner", "close_call", "cheap_runner_up"):
        folder = write_sweep(tmp_path_factory.mktemp(scenario) / "out", scenario)
        out[scenario] = folder, write_report(folder)
    return out


def table_of(built, scenario: str = "clear_winner") -> pd.DataFrame:
    return pd.read_csv(built[scenario][0] / "comparison.csv")


# ---- the comparison table ------------------------------------------------------------------------------------

def test_a_row_per_model_with_the_columns_the_issue_lists(built):
    table = table_of(built)
    sweep = json.loads((built["clear_winner"][0] / "sweep.json").read_text())
    assert sorted(table["model"]) == sorted(sweep["models"])
    for column in ("model", "test_accuracy", "test_accuracy_std", "test_f1_macro", "test_f1_weighted", "test_loss",
                   "train_time_s", "epochs", "params", "images_per_s", "peak_memory_mb", "trials", "failed_trials",
                   "best_config", "status", "reason", "seeds", "test_map_50", "test_map"):
        assert column in table, column
    # Best first, the failed model last.
    assert list(table["model"]) == ["resnet18", "cnn", "faster_rcnn", "vit", "alexnet"]
    assert json.loads(table.loc[0, "best_config"]) == sweep["status"]["resnet18"]["best_config"]
    assert table.set_index("model").loc["vit", "failed_trials"] == 1


def test_mean_and_sample_std_over_seeds(built):
    folder = built["clear_winner"][0]
    row = table_of(built).set_index("model").loc["cnn"]
    runs = [json.loads((folder / "final" / "cnn" / f"seed{k}" / "result.json").read_text()) for k in range(3)]
    accuracies = [r["test_accuracy"] for r in runs]
    assert row["seeds"] == 3
    assert row["test_accuracy"] == pytest.approx(statistics.mean(accuracies))
    assert row["test_accuracy_std"] == pytest.approx(statistics.stdev(accuracies))
    assert row["test_accuracy_std"] > 0
    assert row["train_time_s"] == pytest.approx(statistics.mean(r["train_time_s"] for r in runs))
    assert row["params"] == runs[0]["params"]


def test_failed_model_keeps_its_row_and_reason(built):
    folder, report = built["clear_winner"]
    row = table_of(built).set_index("model").loc["alexnet"]
    assert row["status"] == "failed" and row["reason"] == FAILED_REASON
    assert math.isnan(row["test_accuracy"]) and row["seeds"] == 0 and row["failed_trials"] == 4
    assert FAILED_REASON in (folder / "comparison.md").read_text()
    assert FAILED_REASON in (folder / "report.html").read_text()
    assert f"alexnet could not be trained: {FAILED_REASON}" in report["summary"]


def test_a_model_without_final_results_is_reported_not_dropped(tmp_path):
    folder = write_sweep(tmp_path / "out", "close_call")
    shutil.rmtree(folder / "final" / "vit")
    row = pd.read_csv(Path(write_report(folder)["files"]["comparison_csv"])).set_index("model").loc["vit"]
    assert row["status"] == "failed" and "final/vit" in row["reason"]


def test_map_columns_only_when_a_detection_model_ran(built):
    assert "test_map_50" not in table_of(built, "close_call")
    assert table_of(built).set_index("model").loc["faster_rcnn", "test_map_50"] == pytest.approx(0.945)


def test_json_and_markdown_are_readable(built):
    folder = built["clear_winner"][0]
    rows = {r["model"]: r for r in json.loads((folder / "comparison.json").read_text())}
    assert rows["alexnet"]["test_accuracy"] is None and isinstance(rows["cnn"]["best_config"], dict)
    assert rows["cnn"]["params"] == 421_642 and rows["cnn"]["pareto"] is True
    md = (folder / "comparison.md").read_text()
    assert md.startswith("| Model | Test accuracy |")
    resnet = next(line for line in md.splitlines() if line.startswith("| resnet18 "))
    assert "99.20% ± 0.10" in resnet and "11,175,370" in resnet and "152.0 s" in resnet


def test_single_seed_has_no_spread(tmp_path):
    report = write_report(write_sweep(tmp_path / "out", "close_call", seeds=1))
    row = report["table"].set_index("model").loc["cnn"]
    assert row["seeds"] == 1 and math.isnan(row["test_accuracy_std"])
    assert "from a single seed" in report["summary"]
    assert "±" not in (tmp_path / "out" / "comparison.md").read_text().split("\n")[2]


# ---- statistics ------------------------------------------------------------------------------------------------

def test_pareto_front_on_a_hand_case():
    accuracy = {"a": 0.99, "b": 0.98, "c": 0.97, "d": 0.99, "e": 0.995, "f": float("nan")}
    seconds = {"a": 100.0, "b": 10.0, "c": 50.0, "d": 200.0, "e": 400.0, "f": 1.0}
    # c is beaten by b on both counts, d by a (same accuracy, slower); a failed run (nan) is no candidate.
    assert pareto_front(accuracy, seconds) == ["b", "a", "e"]
    assert pareto_front({"x": 0.9, "y": 0.9}, {"x": 5.0, "y": 5.0}) == ["x", "y"]
    assert pareto_front({}, {}) == []


def test_the_table_marks_the_front(built):
    front = table_of(built).set_index("model")["pareto"]
    assert front.to_dict() == {"resnet18": True, "cnn": True, "faster_rcnn": False, "vit": False, "alexnet": False}


# ---- the generated verdict -------------------------------------------------------------------------------------

def test_verdict_follows_the_numbers(built):
    clear, close, cheap = (built[s][1]["summary"] for s in ("clear_winner", "close_call", "cheap_runner_up"))
    assert clear != close != cheap
    assert clear.startswith("resnet18 is the most accurate: 99.20%") and "1.70 points ahead of cnn" in clear
    assert "gap is significant at the 0.05 level" in clear and "not significant" not in clear
    assert "On the Pareto front of accuracy against training time" in clear and "cnn, resnet18" in clear
    assert close.startswith("cnn is the most accurate: 98.60%") and "0.10 points ahead of resnet18" in close
    assert "gap is not significant at the 0.05 level" in close
    assert "cnn is also the fastest to train, so it alone is on the Pareto front" in close
    assert "cheapest model within 0.5 points of the best is cnn (0.30 points behind, 10.9× faster" in cheap
    assert "Every architecture and every search trial trained." in cheap
    assert built["clear_winner"][1]["best_model"] == "resnet18" and built["close_call"][1]["best_model"] == "cnn"


def test_the_verdict_tests_the_top_two_on_every_seed(built):
    folder = built["clear_winner"][0]
    seeds = {m: [json.loads((folder / "final" / m / f"seed{k}" / "result.json").read_text()) for k in range(3)]
             for m in ("resnet18", "cnn")}
    correct = {m: [[p == t for p, t in zip(r["test_predictions"], r["test_labels"], strict=True)] for r in runs]
               for m, runs in seeds.items()}
    expected = matched_mcnemar(correct["resnet18"], correct["cnn"]).pooled
    assert expected.n == 3 * N_TEST
    summary = built["clear_winner"][1]["summary"]
    assert "On 3 seeds × 1,000 test images, matched seed to seed," in summary
    assert (f"resnet18 is right where cnn is wrong {expected.b} times and the reverse happens {expected.c} times"
            in summary)
    assert "Holm-adjusted over the 6 pairs of models" in summary


def test_without_per_image_predictions_the_report_says_why_nothing_is_tested(tmp_path):
    folder = write_sweep(tmp_path / "out", "cheap_runner_up")
    for path in folder.glob("final/*/seed*/result.json"):
        result = json.loads(path.read_text())
        del result["test_labels"]
        path.write_text(json.dumps(result))
        (path.parent / "predictions.npz").unlink()
    report = write_report(folder)
    assert ("Whether resnet18's lead is real could not be tested: its result.json has no per-image test predictions"
            in report["summary"])
    text = (folder / "report.html").read_text()
    assert "No trained model kept per-image test predictions" in text


# ---- the HTML page ---------------------------------------------------------------------------------------------

class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        self.ids.update([found["id"]] if "id" in found else [])
        if tag == "img":
            self.images.append(found)
        self.links += [found[k] for k in ("src", "href", "srcset", "poster", "data") if k in found]


def card(text: str, anchor: str) -> str:
    """The HTML of one section of the page."""
    return text.split(f'<section id="{anchor}"', 1)[1].split("</section>", 1)[0]


def images_in(text: str, anchor: str) -> int:
    return card(text, anchor).count("<img ")


def test_html_is_one_self_contained_file(built):
    from PIL import Image

    text = (built["clear_winner"][0] / "report.html").read_text()
    page = Page()
    page.feed(text)
    assert set(SECTIONS) <= page.ids
    # Figures: pareto, size, search trials, confusion, F1; a parallel-coordinates figure per architecture; a digit
    # grid per classifier, the two ways the top two disagree, the detector's canvases; reliability; robustness.
    expected = {"pareto": 1, "accuracy-vs-params": 1, "validation-curves": 1, "confusion-matrices": 1,
                "per-class-f1": 1, "search-learned": 5, "errors": 3 + 2 + 1, "calibration": 1, "robustness": 1}
    assert {card: images_in(text, card) for card in expected} == expected
    for img in page.images:
        assert img["alt"].strip()
        assert img["src"].startswith("data:image/png;base64,")
        png = Image.open(BytesIO(base64.b64decode(img["src"].split(",", 1)[1])))
        assert png.format == "PNG" and png.width > 300 and png.height > 60
    assert not any(link.startswith(("http:", "https:", "//")) for link in page.links)
    assert not {"script", "link", "iframe", "object", "embed"} & page.tags
    lowered = text.lower()
    assert "http://" not in lowered and "https://" not in lowered and "@import" not in lowered and "url(" not in lowered


def test_html_table_lists_every_model(built):
    text = (built["clear_winner"][0] / "report.html").read_text()
    table = text.split('id="comparison-table"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr") == 1 + 5
    assert "11,175,370" in table and "99.20% ± 0.10" in table and "not trained: why is under" in table


def test_timeline_and_cluster_busy_when_the_sweep_recorded_them(tmp_path):
    from PIL import Image

    folder = write_sweep(tmp_path / "out", "clear_winner")
    sweep = stamp_timeline(folder, slots=3, cpus=4.0)
    text = Path(write_report(folder)["files"]["report_html"]).read_text()
    page = Page()
    page.feed(text)
    assert "timeline" in page.ids and images_in(text, "timeline") == 1
    section = text.split('id="timeline"', 1)[1].split("</section>", 1)[0]
    src = section.split('src="', 1)[1].split('"', 1)[0]
    png = Image.open(BytesIO(base64.b64decode(src.split(",", 1)[1])))
    assert png.format == "PNG" and png.width > 600 and png.height > 200
    # 5 models x 4 trials, and 3 seeds of each of the 4 models that trained.
    assert "20 search trials and 12 retrains, at most 3 at once" in section
    assert "Each search trial held 1 CPU." in section
    meta = text.split('<p class="meta">', 1)[1].split("</p>", 1)[0]
    busy = f"{sweep['cluster_busy']:.0%}"
    assert 0.5 < sweep["cluster_busy"] < 1
    assert f"{round(sweep['wall_time_s'] / 60)} min wall time, cluster busy {busy} of 4 CPUs" in meta


def test_a_sweep_from_before_the_timeline_has_none(built):
    text = (built["clear_winner"][0] / "report.html").read_text()
    assert 'id="timeline"' not in text and "cluster busy" not in text
    assert "42 min wall time" in text


def test_names_and_reasons_from_the_sweep_cannot_inject_markup(tmp_path):
    folder = write_sweep(tmp_path / "out", "close_call", seeds=1)
    model, reason = "<img src=x onerror=alert(1)>", '<script>alert("reason")</script> & more'
    for name in ("sweep.json", "trials.json"):
        (folder / name).write_text((folder / name).read_text().replace("alexnet", model))
    sweep = json.loads((folder / "sweep.json").read_text())
    sweep["status"][model]["reason"] = reason
    (folder / "sweep.json").write_text(json.dumps(sweep))
    text = Path(write_report(folder)["files"]["report_html"]).read_text()
    page = Page()
    page.feed(text)
    assert "script" not in page.tags
    assert all(img["src"].startswith("data:image/png;base64,") for img in page.images)
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;script&gt;alert(&#34;reason&#34;)&lt;/script&gt; &amp; more" in text
    failures = text.split('id="failures"', 1)[1].split("</section>", 1)[0]
    assert "<strong>&lt;img src=x onerror=alert(1)&gt;</strong>: &lt;script&gt;" in failures


# ---- the command line ------------------------------------------------------------------------------------------

def test_cli_rebuilds_every_file(tmp_path, capsys):
    folder = write_sweep(tmp_path / "out", "close_call", seeds=2)
    proc = run_module("jobs.report", str(folder))
    assert proc.returncode == 0, proc.stderr
    for name in ("comparison.csv", "comparison.json", "comparison.md", "report.html"):
        assert (folder / name).stat().st_size > 0
        assert f"wrote {folder / name}" in proc.stdout
    assert "cnn is the most accurate" in proc.stdout
    before = {name: (folder / name).read_text() for name in ("comparison.md", "comparison.csv")}
    (folder / "comparison.md").unlink()
    (folder / "report.html").unlink()
    assert run_in_process(main, [str(folder)], capsys).returncode == 0
    assert {name: (folder / name).read_text() for name in before} == before
    assert (folder / "report.html").is_file()


def test_cli_folder_without_sweep_json_is_one_error_line(tmp_path):
    (tmp_path / "empty").mkdir()
    # The line names the folder and the file it lacks (its wording is jobs/sweep_folder.py's).
    assert_usage_error(run_module("jobs.report", str(tmp_path / "empty")), str(tmp_path / "empty"), "sweep.json")


@pytest.mark.parametrize(("damage", "fragment"), [
    ("missing", "does not exist"),
    ("sweep", "sweep.json is not valid JSON"),
    ("no-models", "has no list of models"),
    ("result", "result.json is not valid JSON"),
])
def test_bad_input_is_a_usage_error(tmp_path, capsys, damage, fragment):
    folder = write_sweep(tmp_path / "out", "cheap_runner_up", seeds=1)
    if damage == "missing":
        folder = tmp_path / "nowhere"
    elif damage == "sweep":
        (folder / "sweep.json").write_text('{"models": [')
    elif damage == "no-models":
        (folder / "sweep.json").write_text('{"preset": "quick"}')
    else:
        (folder / "final" / "cnn" / "seed0" / "result.json").write_text("{")
    assert_usage_error(run_in_process(main, [str(folder)], capsys), fragment)


def test_a_sweep_where_nothing_trained_still_reports(tmp_path):
    folder = write_sweep(tmp_path / "out", "close_call")
    sweep = json.loads((folder / "sweep.json").read_text())
    for model, status in sweep["status"].items():
        status.update(status="failed", reason=f"{model} ran out of memory")
    (folder / "sweep.json").write_text(json.dumps(sweep))
    shutil.rmtree(folder / "final")
    report = write_report(folder)
    assert report["best_model"] is None and len(report["table"]) == 4
    assert report["summary"].startswith("No architecture finished training")
    assert "cnn could not be trained: cnn ran out of memory" in report["summary"]
    # What the search tried is still there to see; nothing about final models is.
    text = (folder / "report.html").read_text()
    assert text.count("<img") == images_in(text, "validation-curves") + images_in(text, "search-learned") > 0
