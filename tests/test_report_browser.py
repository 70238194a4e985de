"""report.html in a real browser (Debian's headless Chromium, offline): the table and every figure render.

`make test` installs chromium when it is missing (mk/report.mk).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from jobs.report import write_report
from tests.sweep_fixture import FAILED_REASON, write_sweep

WIDTH, HEIGHT = 1400, 3000
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
# Appended to a test copy of the page only: after load, write what the browser made of the page into the DOM.
PROBE = """<script>window.addEventListener("load", function () {
  var out = document.createElement("pre"); out.id = "render-check";
  out.textContent = JSON.stringify({
    images: Array.from(document.images).map(function (i) { return [i.alt, i.naturalWidth, i.naturalHeight]; }),
    rows: Array.from(document.querySelectorAll("#comparison-table tbody tr")).map(function (r) {
      return r.cells[0].textContent.trim().split(/\\s+/)[0]; }),
    scrollWidth: document.documentElement.scrollWidth});
  document.body.appendChild(out);
});</script>"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium not found; `make test` installs it, or: apt-get install -y chromium")
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = write_sweep(tmp_path_factory.mktemp("browser") / "out", "clear_winner")
    return Path(write_report(folder)["files"]["report_html"])


def browse(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_every_figure_loads_and_the_table_renders(chromium, report, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    proc = browse(chromium, tmp_path / "profile", "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="render-check">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"the page never finished loading: {proc.stderr[-2000:]}"
    seen = json.loads(html.unescape(found.group(1)))
    assert len(seen["images"]) == 5
    for alt, width, height in seen["images"]:
        assert width > 0 and height > 0, f"figure did not load: {alt}"
    assert seen["rows"] == ["resnet18", "cnn", "faster_rcnn", "vit", "alexnet"]
    assert seen["scrollWidth"] <= WIDTH, "the page is wider than the window"
    assert FAILED_REASON in proc.stdout


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
