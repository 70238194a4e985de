"""Synthetic sweeps (tests/sweep_fixture) written, and reported, once per session for the report's tests (once per
pytest-xdist worker under `make test-fast`).

A render of the full report costs seconds (bootstraps, fANOVA, ~20 figures), and many tests read the same sweep's
page. The `reports` fixture hands out:

- `reports.copy(dest, scenario, ...)`: a fresh copy of a written sweep (timeline stamped when `slots` is given),
  exactly what write_sweep (and stamp_timeline) would have written at DEST, for a test that changes it;
- `reports.built(scenario, ...)`: that sweep reported by write_report, once per session: (folder, write_report's
  answer), for tests that only read it;
- `reports.cli(scenario, ...)`: that sweep reported by `python -m jobs.report FOLDER` run in this process (the same
  entry point and error handling as the command line): (folder, its CompletedProcess with stdout and stderr).

Every cached folder is a copy of a sweep written elsewhere, so nothing in a report can depend on where the sweep ran.
Tests must never change a cached folder: they copy it (`reports.copy`, or shutil.copytree of a built one).

A test module imports the fixture as `from tests.report_cache import reports_fixture  # noqa: F401` and asks
for `reports`.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from tests.sweep_fixture import write_sweep
from tests.timeline_fixture import stamp_timeline
from tune.analysis.significance import N_RESAMPLES

# Bootstrap resamples of a report whose test reads the page, not the statistic: the intervals and chances are
# tested against scipy and by hand at the real default (tests/test_significance.py, tests/test_report_trust.py).
PAGE_RESAMPLES = 200


class Reports:
    def __init__(self) -> None:
        self.base: Path | None = None

    def _folder(self, *parts: object) -> Path:
        assert self.base is not None
        return self.base / "-".join(str(p) for p in parts)

    @functools.cache  # noqa: B019 -- one instance for the session (REPORTS below), never freed on purpose
    def written(self, scenario: str, seeds: int = 3, slots: int | None = None, cpus: float = 2.0) -> Path:
        """The sweep as write_sweep(scenario, seeds) writes it, then stamp_timeline(slots, cpus) when SLOTS."""
        folder = write_sweep(self._folder("written", scenario, seeds, slots, cpus) / "out", scenario, seeds=seeds)
        if slots is not None:
            stamp_timeline(folder, slots=slots, cpus=cpus)
        return folder

    def copy(self, dest: Path, scenario: str, seeds: int = 3, slots: int | None = None, cpus: float = 2.0) -> Path:
        """A copy of `written(...)` at DEST, for the test to change."""
        return Path(shutil.copytree(self.written(scenario, seeds, slots, cpus), dest))

    @functools.cache  # noqa: B019
    def built(self, scenario: str, seeds: int = 3, slots: int | None = None, cpus: float = 2.0,
              n_resamples: int = PAGE_RESAMPLES) -> tuple[Path, dict[str, Any]]:
        from tune.report.write import write_report

        folder = self.copy(self._folder("built", scenario, seeds, slots, cpus, n_resamples) / "out", scenario, seeds,
                           slots, cpus)
        return folder, write_report(folder, n_resamples=n_resamples)

    @functools.cache  # noqa: B019
    def cli(self, scenario: str, seeds: int = 3, slots: int | None = None,
            cpus: float = 2.0) -> tuple[Path, subprocess.CompletedProcess]:
        """`python -m jobs.report FOLDER` in this process: jobs.report.main under jobs.engine.errors.run_cli, as
        tests/cli.py run_in_process runs it (at the command's defaults: N_RESAMPLES resamples)."""
        from jobs.engine.errors import run_cli
        from jobs.report import main

        assert N_RESAMPLES > PAGE_RESAMPLES  # the command line's own default, not the page tests' shortcut
        folder = self.copy(self._folder("cli", scenario, seeds, slots, cpus) / "elsewhere", scenario, seeds, slots,
                           cpus)
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                run_cli(lambda: main([str(folder)]))
                code = 0
            except SystemExit as exit_:
                code = exit_.code
        return folder, subprocess.CompletedProcess([str(folder)], code, out.getvalue(), err.getvalue())


REPORTS = Reports()


@pytest.fixture(name="reports")
def reports_fixture(tmp_path_factory: pytest.TempPathFactory) -> Reports:
    """The session's cache of written and reported synthetic sweeps (this module's docstring)."""
    if REPORTS.base is None:
        REPORTS.base = tmp_path_factory.mktemp("report-cache")
    return REPORTS
