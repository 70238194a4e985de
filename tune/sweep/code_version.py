"""Which code ran a sweep: the git commit of the checkout (read from .git, no process), else $ARCHSWEEP_VERSION
(the image's tag, where the image has no .git), else "unknown". Recorded in sweep.json so that two sweeps can be
told apart by their code (python -m jobs.report --compare)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def code_version(repo: Path = REPO) -> str:
    """The commit HEAD points at (40 hex digits), with "+" when it cannot be read whole; the fallbacks above."""
    git = repo / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head  # a detached HEAD is the commit itself
        ref = head.removeprefix("ref: ")
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        packed = (git / "packed-refs").read_text().splitlines() if (git / "packed-refs").is_file() else []
        return next((line.split()[0] for line in packed if line.endswith(" " + ref)), "unknown")
    except OSError:  # no checkout: an image built from one
        return os.environ.get("ARCHSWEEP_VERSION", "unknown")
