"""The sweep's report from stored results: the comparison table, Pareto, the generated verdict, the self-contained
HTML and `python -m jobs.report`. Synthetic sweep folders stand in for training (tests/sweep_fixture). The statistics,
search, error, calibration and robustness sections are tests/test_report_trust.py's."""

from __future__ import annotations

import base64
import html
import json
import math
import re
import shutil
import statistics
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import pandas as pd
import pytest

from jobs.report import main, write_report
from tests.cli import assert_usage_error, run_in_process, run_module
from tests.report_cache import PAGE_RESAMPLES, reports_fixture  # noqa: F401 -- the `reports` fixture
from tests.sweep_fixture import FAILED_REASON, N_TEST
from tune.analysis.significance import matched_mcnemar
from tune.analysis.stats import pareto_front

SECTIONS = ("summary", "comparison-table", "statistics", "search", "search-learned", "validation-curves", "pareto",
            "accuracy-vs-params", "confusion-matrices", "per-class-f1", "errors", "calibration", "robustness",
            "failures")


@pytest.fixture
def built(reports) -> dict[str, tuple[Path, dict]]:
    """Each scenario written and reported once a session (tests/report_cache.py); tests only read these folders."""
    return {scenario: reports.built(scenario) for scenario in ("clear_winner", "close_call", "cheap_runner_up")}


def render(folder: Path) -> dict:
    """write_report for a test that reads the page, not the bootstrap (tests/report_cache.py PAGE_RESAMPLES)."""
    return write_report(folder, n_resamples=PAGE_RESAMPLES)


def flat(text: str) -> str:
    """TEXT with its line breaks and runs of spaces as single spaces: the printed summary is wrapped for a terminal."""
    return " ".join(text.split())


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
    assert f"alexnet could not be trained: {FAILED_REASON.split(' (')[0]};" in flat(report.summary)


def test_a_model_without_final_results_is_reported_not_dropped(reports, tmp_path):
    folder = reports.copy(tmp_path / "out", "close_call")
    shutil.rmtree(folder / "final" / "vit")
    row = pd.read_csv(Path(render(folder).files["comparison_csv"])).set_index("model").loc["vit"]
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


def test_single_seed_has_no_spread(reports):
    folder, report = reports.built("close_call", seeds=1)
    row = report.table.set_index("model").loc["cnn"]
    assert row["seeds"] == 1 and math.isnan(row["test_accuracy_std"])
    assert "from a single seed" in flat(report.summary)
    assert "±" not in (folder / "comparison.md").read_text().split("\n")[2]


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
    clear, close, cheap = (flat(built[s][1].summary) for s in ("clear_winner", "close_call", "cheap_runner_up"))
    assert clear != close != cheap
    assert clear.startswith("resnet18 is the most accurate: 99.20%") and "1.70 points ahead of cnn" in clear
    assert "gap is significant at the 0.05 level" in clear and "not significant" not in clear
    assert "On the Pareto front of accuracy against training time" in clear and "cnn, resnet18" in clear
    assert close.startswith("cnn is the most accurate: 98.60%") and "0.10 points ahead of resnet18" in close
    assert "gap is not significant at the 0.05 level" in close
    assert "cnn is also the fastest to train, so it alone is on the Pareto front" in close
    assert "cheapest model within 0.5 points of the best is cnn (0.30 points behind, 10.9× faster" in cheap
    assert "Every architecture and every search trial trained." in cheap
    assert built["clear_winner"][1].best_model == "resnet18" and built["close_call"][1].best_model == "cnn"


def test_the_verdict_tests_the_top_two_on_every_seed(built):
    folder = built["clear_winner"][0]
    seeds = {m: [json.loads((folder / "final" / m / f"seed{k}" / "result.json").read_text()) for k in range(3)]
             for m in ("resnet18", "cnn")}
    correct = {m: [[p == t for p, t in zip(r["test_predictions"], r["test_labels"], strict=True)] for r in runs]
               for m, runs in seeds.items()}
    expected = matched_mcnemar(correct["resnet18"], correct["cnn"]).pooled
    assert expected.n == 3 * N_TEST
    summary = flat(built["clear_winner"][1].summary)
    assert "On 3 seeds × 1,000 test images, matched seed to seed," in summary
    assert (f"resnet18 is right where cnn is wrong {expected.b} times and the reverse happens {expected.c} times"
            in summary)
    assert "Holm-adjusted over the 6 pairs of models" in summary


def test_without_per_image_predictions_the_report_says_why_nothing_is_tested(reports, tmp_path):
    folder = reports.copy(tmp_path / "out", "cheap_runner_up")
    for path in folder.glob("final/*/seed*/result.json"):
        result = json.loads(path.read_text())
        del result["test_labels"]
        path.write_text(json.dumps(result))
        (path.parent / "predictions.npz").unlink()
    report = render(folder)
    assert ("Whether resnet18's lead is real could not be tested: its result.json has no per-image test predictions"
            in flat(report.summary))
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
    # Rendered with write_report's n_resamples (tests/report_cache.py): the page says how many it drew.
    assert f"Percentile bootstrap over {PAGE_RESAMPLES} resamples" in text
    assert not {"script", "link", "iframe", "object", "embed"} & page.tags
    lowered = text.lower()
    assert "http://" not in lowered and "https://" not in lowered and "@import" not in lowered and "url(" not in lowered


def test_html_table_lists_every_model(built):
    text = (built["clear_winner"][0] / "report.html").read_text()
    table = text.split('id="comparison-table"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr") == 1 + 5
    assert "11,175,370" in table and "99.20% ± 0.10" in table and "not trained: why is under" in table


def test_timeline_and_cluster_busy_when_the_sweep_recorded_them(reports):
    from PIL import Image

    folder, report = reports.built("clear_winner", slots=3, cpus=4.0)
    sweep = json.loads((folder / "sweep.json").read_text())
    text = Path(report.files["report_html"]).read_text()
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


def test_names_and_reasons_from_the_sweep_cannot_inject_markup(reports, tmp_path):
    folder = reports.copy(tmp_path / "out", "close_call", seeds=1)
    model, reason = "<img src=x onerror=alert(1)>", '<script>alert("reason")</script> & more'
    for name in ("sweep.json", "trials.json"):
        (folder / name).write_text((folder / name).read_text().replace("alexnet", model))
    sweep = json.loads((folder / "sweep.json").read_text())
    sweep["status"][model]["reason"] = reason
    (folder / "sweep.json").write_text(json.dumps(sweep))
    text = Path(render(folder).files["report_html"]).read_text()
    page = Page()
    page.feed(text)
    assert "script" not in page.tags
    assert all(img["src"].startswith("data:image/png;base64,") for img in page.images)
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;script&gt;alert(&#34;reason&#34;)&lt;/script&gt; &amp; more" in text
    failures = text.split('id="failures"', 1)[1].split("</section>", 1)[0]
    assert "<strong>&lt;img src=x onerror=alert(1)&gt;</strong>: &lt;script&gt;" in failures


# ---- the command line ------------------------------------------------------------------------------------------

def test_cli_rebuilds_every_file(reports, tmp_path, capsys):
    # `python -m jobs.report FOLDER` run in this process (tests/report_cache.py), once a session for every test of
    # the command's page; test_cli_folder_without_sweep_json_is_one_error_line runs the module itself.
    built, proc = reports.cli("close_call", seeds=2)
    assert proc.returncode == 0, proc.stderr
    for name in ("comparison.csv", "comparison.json", "comparison.md", "report.html"):
        assert (built / name).stat().st_size > 0
        assert f"wrote {built / name}" in proc.stdout
    assert "cnn is the most accurate" in proc.stdout
    folder = shutil.copytree(built, tmp_path / "out")
    before = {name: (folder / name).read_text() for name in ("comparison.md", "comparison.csv")}
    (folder / "comparison.md").unlink()
    (folder / "report.html").unlink()
    assert run_in_process(main, [str(folder)], capsys).returncode == 0
    assert {name: (folder / name).read_text() for name in before} == before
    assert (folder / "report.html").is_file()


@pytest.mark.process
def test_cli_folder_without_sweep_json_is_one_error_line(tmp_path):
    # The one real `python -m jobs.report` of the suite: it proves the module's __main__ path; every other test of
    # the command runs its entry point in this process (tests/cli.py run_in_process, tests/report_cache.py).
    (tmp_path / "empty").mkdir()
    # The line names the folder and the file it lacks (its wording is tune/sweep/folder.py's).
    assert_usage_error(run_module("jobs.report", str(tmp_path / "empty")), str(tmp_path / "empty"), "sweep.json")


@pytest.mark.parametrize(("damage", "fragment"), [
    ("missing", "does not exist"),
    ("sweep", "sweep.json is not valid JSON"),
    ("no-models", "has no list of models"),
])  # a torn result.json or trials.json is left out with a line naming it (tests/test_reference_sweep.py)
def test_bad_input_is_a_usage_error(reports, tmp_path, capsys, damage, fragment):
    folder = reports.copy(tmp_path / "out", "cheap_runner_up", seeds=1)
    if damage == "missing":
        folder = tmp_path / "nowhere"
    elif damage == "sweep":
        (folder / "sweep.json").write_text('{"models": [')
    elif damage == "no-models":
        (folder / "sweep.json").write_text('{"preset": "quick"}')
    assert_usage_error(run_in_process(main, [str(folder)], capsys), fragment)


def test_a_sweep_where_nothing_trained_still_reports(reports, tmp_path):
    folder = reports.copy(tmp_path / "out", "close_call")
    sweep = json.loads((folder / "sweep.json").read_text())
    for model, status in sweep["status"].items():
        status.update(status="failed", reason=f"{model} ran out of memory")
    (folder / "sweep.json").write_text(json.dumps(sweep))
    shutil.rmtree(folder / "final")
    report = render(folder)
    assert report.best_model is None and len(report.table) == 4
    assert report.summary.startswith("No architecture finished training")
    assert "cnn could not be trained: cnn ran out of memory;" in flat(report.summary)
    # What the search tried is still there to see; nothing about final models is.
    text = (folder / "report.html").read_text()
    assert text.count("<img") == images_in(text, "validation-curves") + images_in(text, "search-learned") > 0


# ---- what a new reader trips over: the printed summary, captions, titles, plurals -------------------------------

WEIGHTS_MISSING = ("{model}: ImageNet weights not found at /root/.cache/torch/hub/checkpoints/{file} and the download "
                   "failed (URLError: <urlopen error [Errno -2] Name or service not known>); put {file} into the cache "
                   "folder /root/.cache/torch/hub/checkpoints (it follows TORCH_HOME), or --set weights=none to train "
                   "from scratch")


def weights_missing(folder: Path) -> dict[str, str]:
    """alexnet and a new vgg16 fail as a sweep without ImageNet weights offline words it; their reasons."""
    sweep = json.loads((folder / "sweep.json").read_text())
    reasons = {model: WEIGHTS_MISSING.format(model=model, file=f"{model}-0123abcd.pth")
               for model in ("alexnet", "vgg16")}
    sweep["models"].append("vgg16")
    sweep["status"]["vgg16"] = dict(sweep["status"]["alexnet"], trials=0, failed_trials=0)
    for model, why in reasons.items():
        sweep["status"][model]["reason"] = why
    (folder / "sweep.json").write_text(json.dumps(sweep))
    return reasons


def test_the_printed_summary_is_short_paragraphs_with_each_failure_said_once_briefly(reports, tmp_path):
    folder = reports.copy(tmp_path / "out", "clear_winner", seeds=1)
    reasons = weights_missing(folder)
    summary = render(folder).summary
    paragraphs = summary.split("\n\n")
    # The verdict, whether it is real, the cost, the failures: each its own paragraph, wrapped for a terminal.
    assert len(paragraphs) == 4 and all(len(line) <= 100 for line in summary.splitlines())
    ranking, real, cost, failed = (flat(p) for p in paragraphs)
    assert ranking.startswith("resnet18 is the most accurate") and "McNemar" in real and "Pareto front" in cost
    assert failed.startswith("alexnet and vgg16 could not be trained: ImageNet weights not found and the download "
                             "failed; report.html's Failures section has the full message.")
    assert summary.count("could not be trained") == 1 and "URLError" not in summary and "/root" not in summary
    text = html.unescape((folder / "report.html").read_text())
    for why in reasons.values():  # the full message, once, on the page
        assert text.count(why.split(": ", 1)[1]) == 1


def test_brief_is_a_messages_first_clause_without_paths():
    from tune.report.words import brief

    assert brief("CUDA out of memory. Tried to allocate 2.00 GiB", 90) == "CUDA out of memory"
    assert brief("checkpoint missing in /tmp/x/y.pt; rerun", 90) == "checkpoint missing"
    assert brief("word " * 40, 30) == "word word word word word word …"


def captions(text: str) -> dict[str, list[str]]:
    """Every <figcaption> of the page but the figure titles, as plain text, by the id of its <section>."""
    found: dict[str, list[str]] = {}
    for section_id, body in re.findall(r'<section id="([^"]+)"(.*?)</section>', text, re.S):
        for caption in re.findall(r"<figcaption>(.*?)</figcaption>", body, re.S):
            found.setdefault(section_id, []).append(" ".join(html.unescape(re.sub(r"<[^>]+>", "", caption)).split()))
    return found


SCATTERS = ("pareto", "accuracy-vs-params", "cost-latency", "cost-gflops", "cost-size")


@pytest.mark.parametrize("seeds", [1, 2])
def test_captions_mention_error_bars_only_when_they_are_drawn(reports, seeds):
    # close_call at 2 seeds is the page `python -m jobs.report` wrote (test_cli_rebuilds_every_file's).
    folder = reports.built("close_call", seeds=1)[0] if seeds == 1 else reports.cli("close_call", seeds=2)[0]
    found = captions((folder / "report.html").read_text())
    assert set(SCATTERS) <= set(found)
    said = " ".join(c for texts in found.values() for c in texts).lower()
    if seeds == 1:
        for words in ("error bar:", "error bars:", "standard deviation", "over seeds", "every seed"):
            assert words not in said, words
        for anchor in SCATTERS:
            assert found[anchor][0].endswith("Each point is a single run (one seed), so there are no error bars.")
        assert found["per-class-f1"][0].startswith("One run per model (a single seed).")
    else:
        for anchor in SCATTERS:
            assert found[anchor][0].endswith("Error bars: ± one standard deviation over seeds."), anchor
        assert found["per-class-f1"][0].startswith("Mean over 2 seeds.")
        assert "mean over 2 seeds" in " ".join(found["robustness"])


def titles(text: str) -> list[str]:
    """The title of every section (h2), subsection (h3) and titled figure of the page, as plain text."""
    found = re.findall(r"<h2>(.*?)</h2>|<h3>(.*?)</h3>|<figcaption class=\"title\">(.*?)</figcaption>", text, re.S)
    return [html.unescape(next(t for t in groups if t)) for groups in found]


def test_no_two_sections_or_figures_share_a_title(reports):
    named = titles(Path(reports.built("clear_winner", slots=3, cpus=4.0)[1].files["report_html"]).read_text())
    assert len(named) > 20
    assert [t for t in named if named.count(t) > 1] == []
    assert {"Accuracy against parameter count", "Accuracy against file size (MB)"} <= set(named)


def test_counts_of_one_are_singular_in_the_device_name_and_the_footer(reports, tmp_path, monkeypatch):
    import torch

    from jobs.engine.train import summary as loop  # where the loop's summary names the device

    monkeypatch.setattr(loop, "usable_cpus", lambda: 2)
    monkeypatch.setattr(loop.torch, "get_num_threads", lambda: 1)
    assert loop.device_name(torch.device("cpu")) == "cpu (2 cores, 1 thread)"
    monkeypatch.setattr(loop, "usable_cpus", lambda: 1)
    monkeypatch.setattr(loop.torch, "get_num_threads", lambda: 2)
    assert loop.device_name(torch.device("cpu")) == "cpu (1 core, 2 threads)"
    # A sweep recorded before this fix says "1 threads" in result.json; the page says it right.
    folder = reports.copy(tmp_path / "out", "cheap_runner_up", seeds=1)
    for path in folder.glob("final/*/seed*/result.json"):
        result = json.loads(path.read_text())
        result["env"]["device"] = "cpu (2 cores, 1 threads)"
        path.write_text(json.dumps(result))
    footer = Path(render(folder).files["report_html"]).read_text().split('<footer id="environment">', 1)[1]
    assert "Final runs trained on cpu (2 cores, 1 thread)." in footer and "1 threads" not in footer
