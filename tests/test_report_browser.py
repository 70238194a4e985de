"""report.html in a real browser (Debian's headless Chromium, offline): the tables fit and every figure renders.

`make test` installs chromium when it is missing (mk/report.mk).
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.report_cache import reports_fixture  # noqa: F401 -- the `reports` fixture
from tests.sweep_fixture import FAILED_REASON

WIDTH, HEIGHT = 1400, 3000
NARROW = 1000  # the narrowest window the tables must fit without scrolling
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
# Appended to a test copy of the page only: after load, write what the browser made of the page into the DOM.
# A table fits its card when it is no wider than the card's content box and its scroll wrapper has nothing to scroll.
PROBE = """<script>window.addEventListener("load", function () {
  var out = document.createElement("pre"); out.id = "render-check";
  out.textContent = JSON.stringify({
    images: Array.from(document.images).map(function (i) {
      var card = i.closest("section");
      return [card.id, i.naturalWidth, i.naturalHeight, i.alt, i.getBoundingClientRect().right,
              card.getBoundingClientRect().right]; }),
    rows: Array.from(document.querySelectorAll("#comparison-table tbody tr")).map(function (r) {
      return r.cells[0].textContent.trim().split(/\\s+/)[0]; }),
    tables: Array.from(document.querySelectorAll("section table")).map(function (t) {
      var card = t.closest("section"), style = getComputedStyle(card), wrap = t.parentElement;
      return {card: card.id, table: t.scrollWidth,
              room: card.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight),
              hidden: wrap.scrollWidth - wrap.clientWidth}; }),
    scrollWidth: document.documentElement.scrollWidth});
  document.body.appendChild(out);
});</script>"""


@pytest.fixture
def report(reports) -> Path:
    """clear_winner with its timeline, reported once a session (tests/report_cache.py; test_report_cost.py's)."""
    return Path(reports.built("clear_winner", slots=3, cpus=4.0)[1].files["report_html"])


def browse(chromium: str, profile: Path, *args: str, width: int = WIDTH) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{HEIGHT}", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def rendered(chromium: str, report: Path, folder: Path, width: int) -> tuple[dict, str]:
    """What the browser made of the page at this window width, and the page as it ended up."""
    probe = folder / "probe.html"
    probe.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    proc = browse(chromium, folder / "profile", "--dump-dom", probe.as_uri(), width=width)
    found = re.search(r'<pre id="render-check">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"the page never finished loading: {proc.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1))), proc.stdout


@pytest.mark.process
def test_every_figure_loads_and_the_table_renders(chromium, report, tmp_path):
    seen, dom = rendered(chromium, report, tmp_path, WIDTH)
    cards = [card for card, *_ in seen["images"]]
    for card in ("timeline", "pareto", "accuracy-vs-params", "validation-curves", "confusion-matrices",
                 "per-class-f1", "calibration", "robustness"):
        assert cards.count(card) == 1, card
    # A parallel-coordinates figure per architecture; a digit grid per classifier, both ways the top two disagree,
    # the detector's canvases.
    assert cards.count("search-learned") == 5 and cards.count("errors") == 3 + 2 + 1
    for card, width, height, alt, *_ in seen["images"]:
        assert width > 0 and height > 0 and alt.strip(), f"figure did not load: {card}"
    assert seen["rows"] == ["resnet18", "cnn", "faster_rcnn", "vit", "alexnet"]
    assert seen["scrollWidth"] <= WIDTH, "the page is wider than the window"
    assert FAILED_REASON in dom


@pytest.mark.process
def test_tables_fit_their_cards_in_a_1000px_window(chromium, report, tmp_path):
    seen, _ = rendered(chromium, report, tmp_path, NARROW)
    cards = [t["card"] for t in seen["tables"]]
    assert {"comparison-table", "statistics", "search", "search-learned", "calibration", "robustness"} <= set(cards)
    assert cards.count("statistics") == 2  # a row per model, a row per pair
    for table in seen["tables"]:
        assert table["table"] <= table["room"], f"{table['card']}'s table is wider than its card: {table}"
        assert table["hidden"] <= 0, f"{table['card']}'s table scrolls: {table}"
    assert seen["scrollWidth"] <= NARROW, "the page is wider than the window"
    assert next(width for card, width, *_ in seen["images"] if card == "timeline") > 0
    for card, width, _, _, right, card_right in seen["images"]:
        assert width > 0 and right <= card_right, f"a figure of {card} sticks out of its card"


@pytest.mark.process
def test_screenshot_shows_a_rendered_page(chromium, report, tmp_path):
    from PIL import Image, ImageStat

    shot = tmp_path / "report.png"
    proc = browse(chromium, tmp_path / "profile", f"--screenshot={shot}", report.as_uri())
    assert shot.is_file(), proc.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    # A blank or failed page is one colour; a rendered report has text, table stripes and coloured plots.
    assert len(image.getcolors(maxcolors=1 << 20) or ()) > 500
    top, figures = image.crop((0, 0, WIDTH, 600)), image.crop((0, 1100, WIDTH, 2000))
    assert max(ImageStat.Stat(top).stddev) > 10 and max(ImageStat.Stat(figures).stddev) > 10
