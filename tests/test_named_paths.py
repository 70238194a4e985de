"""Every file of the project that the code, the tests and the docs name by its path exists: a docstring that still
names a module by where it was before it moved into its room sends a reader nowhere."""

from __future__ import annotations

import re

from tests.paths import REPO

# A path of ours: starts at one of our top-level folders, not inside another path (ray/tune/... is Ray's source).
NAMED = re.compile(r"(?<![\w/.])((?:jobs|tune|models|tests|k8s|scripts|docs|mk)/[\w/.-]+\.(?:py|j2|yaml|md|sh|css|mk))")


TEXT = re.compile(r"\.(py|md|j2|yaml|mk|sh)$")
OURS = ("jobs", "tune", "models", "tests", "k8s", "scripts", "docs", "mk", ".ci")


def named_paths(text: str) -> set[str]:
    return set(NAMED.findall(text))


def test_the_pattern_finds_our_paths_and_not_rays():
    text = "see jobs/engine/train/loop.py and (tune/report/templates/report.html.j2); ray/tune/experiment/trial.py"
    assert named_paths(text) == {"jobs/engine/train/loop.py", "tune/report/templates/report.html.j2"}


def test_every_path_the_project_names_exists():
    # Read from the tree, not `git ls-files`: the fast tier starts no process.
    texts = [path for top in OURS for path in (REPO / top).rglob("*")
             if path.is_file() and "__pycache__" not in path.parts and TEXT.search(path.name)]
    texts += [REPO / name for name in ("Makefile", "Dockerfile", "README.md", "BENCHMARKS.md")]
    missing = sorted({f"{name.relative_to(REPO)}: {path}" for name in texts for path in named_paths(name.read_text())
                      if not (REPO / path).exists() and "__pycache__" not in path})
    assert missing == []
