"""The report's "What it costs" section in a real browser (Debian's headless Chromium, offline): its figures load
and its table fits its card in a 1000 px window. Modelled on tests/test_report_browser.py."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.report_cache import reports_fixture  # noqa: F401 -- the `reports` fixture

NARROW, HEIGHT = 1000, 3000  # the narrowest window the tables must fit without scrolling
FIGURES = ["cost-training", "cost-latency", "cost-gflops", "cost-size", "time-to-accuracy"]
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
# Appended to a test copy of the page only: after load, write what the browser made of the section into the DOM.
PROBE = """<script>window.addEventListener("load", function () {
  var figures = FIGURES, out = document.createElement("pre"); out.id = "render-check";
  var table = document.getElementById("cost-table"), card = table.closest("section"), style = getComputedStyle(card);
  out.textContent = JSON.stringify({
    images: Array.from(document.images).filter(function (i) {
      return figures.indexOf(i.closest("section").id) >= 0; }).map(function (i) {
      return [i.closest("section").id, i.complete, i.naturalWidth, i.naturalHeight, i.clientWidth]; }),
    table: {card: card.id, width: table.scrollWidth,
            room: card.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight),
            hidden: table.parentElement.scrollWidth - table.parentElement.clientWidth,
            rows: Array.from(table.tBodies[0].rows).map(function (r) { return r.cells[0].textContent.trim(); })}});
  document.body.appendChild(out);
});</script>""".replace("FIGURES", json.dumps(FIGURES))


@pytest.fixture
def report(reports) -> Path:
    """clear_winner with its timeline, reported once a session (tests/report_cache.py; test_report_cost.py's)."""
    return Path(reports.built("clear_winner", slots=3, cpus=4.0)[1].files["report_html"])


def rendered(chromium: str, report: Path, folder: Path, width: int) -> dict:
    probe = folder / "probe.html"
    probe.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    proc = subprocess.run([chromium, *FLAGS, f"--user-data-dir={folder / 'profile'}", f"--window-size={width},{HEIGHT}",
                           "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'<pre id="render-check">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"the page never finished loading: {proc.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.process
def test_the_cost_figures_render_and_the_cost_table_fits_1000px(chromium, report, tmp_path):
    seen = rendered(chromium, report, tmp_path, NARROW)
    assert [card for card, *_ in seen["images"]] == FIGURES
    for card, complete, width, height, shown in seen["images"]:
        assert complete and width > 0 and height > 0 and shown > 0, f"figure did not render: {card}"
    table = seen["table"]
    assert table["card"] == "cost" and table["rows"] == ["resnet18", "cnn", "faster_rcnn ‡", "vit", "alexnet"]
    assert table["width"] <= table["room"], f"the cost table is wider than its card: {table}"
    assert table["hidden"] <= 0, f"the cost table scrolls: {table}"
