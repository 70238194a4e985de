"""Sweep against sweep (`python -m jobs.report --compare A B`, tune/report/compare.py) on the report tests' synthetic
sweeps: per architecture both sweeps' retrains with intervals, McNemar between them on the same test images, and
what differed."""

from __future__ import annotations

import html
import re

from jobs.report import main
from tests.cli import assert_usage_error, run_in_process
from tests.report_cache import PAGE_RESAMPLES, reports_fixture  # noqa: F401 -- the `reports` fixture
from tune.report.compare import compare_sweeps, write_sweep_comparison


def text(path) -> str:
    page = re.sub(r"<style>.*?</style>", "", path.read_text(), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_two_sweeps_side_by_side_with_mcnemar_and_what_differed(reports, tmp_path):
    a = reports.copy(tmp_path / "a", "clear_winner", seeds=3)
    b = reports.copy(tmp_path / "b", "close_call", seeds=1)
    page = compare_sweeps(a, b, PAGE_RESAMPLES)
    both = [row for row in page.rows if "[" in row.a.accuracy and "[" in row.b.accuracy]
    assert both and len(both) < len(page.rows)  # the architectures of either sweep, whichever trained
    for row in both:  # seed 0 is the one both have: a pooled McNemar over it, on the same test images
        assert row.test.startswith("p = ") and "over seed 0" in row.test, row.test
    for row in page.rows:
        if "not in this sweep" in (row.a.accuracy + row.b.accuracy):
            assert row.test == "in one sweep only", row
        elif row not in both:  # not trained in one of them: it says why, and there is nothing to test
            assert "not trained" in row.a.accuracy + row.b.accuracy and row.test.startswith("no per-image"), row
    assert ("seeds", "3", "1") in page.differences
    path = write_sweep_comparison(a, b, n_resamples=PAGE_RESAMPLES)
    assert path == a / "compare-b.html" and "McNemar, A against B: p = " in text(path)


def test_a_sweep_against_itself_differs_in_nothing(reports, tmp_path):
    a = reports.copy(tmp_path / "a", "close_call", seeds=1)
    page = compare_sweeps(a, a, PAGE_RESAMPLES)
    assert page.differences == []
    tested = [row for row in page.rows if row.test.startswith("p = ")]
    assert tested and all("no discordant images" in row.test and "do not differ" in row.test for row in tested)


def test_the_command_takes_two_sweeps_and_no_third(reports, tmp_path, capsys):
    a = reports.copy(tmp_path / "a", "close_call", seeds=1)
    assert_usage_error(run_in_process(main, [str(a), "--compare", str(a), str(a)], capsys), "--compare takes")
    assert_usage_error(run_in_process(main, ["--compare", str(a), str(tmp_path / "nope")], capsys), "nope")
    assert_usage_error(run_in_process(main, ["--compare", str(a), str(a), "--mlflow", "http://127.0.0.1:9"], capsys),
                       "--compare logs nothing")
