"""The report's sections after the built-in ones, found without a list to keep up to date.

A section is a module of this room with a function registered by `@report_section(name, template)`: it takes the
SectionInputs and returns what its partial (templates/TEMPLATE, which reads it as `data`) lays out, or None to
leave the section off the page. `sections()` imports every module of the room, so a new section is its module, its
partial and its test (tune/report/confident_errors.py is one).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from tune.analysis.results import SweepResults
from tune.analysis.row import ComparisonRow
from tune.report.figures import Palette
from tune.report.predictions import SweepPredictions


@dataclass(frozen=True)
class SectionInputs:
    """What a section reads: ROWS, the comparison's rows of the models that trained (tune/analysis/row.py
    ComparisonRow: each compared RunResult field's mean over seeds by `row.mean(name)`), best first; PREDICTIONS,
    every final run's predictions.npz; COLOURS, a colour per model shared by every figure of the page; RESULTS,
    everything the sweep folder stores (tune/analysis/results.py SweepResults: the sweep record and its trials)."""

    rows: list[ComparisonRow]
    predictions: SweepPredictions
    colours: Palette
    results: SweepResults


# What a builder returns is its partial's `data` (a view with the attributes the partial reads), or None.
SectionBuilder = Callable[[SectionInputs], object | None]


@dataclass(frozen=True)
class Section:
    name: str
    template: str  # a file of tune/report/templates/
    build: SectionBuilder


_SECTIONS: dict[str, Section] = {}


def report_section(name: str, template: str) -> Callable[[SectionBuilder], SectionBuilder]:
    """Register the decorated builder as section NAME, laid out by TEMPLATE. Raises ValueError when another
    builder already has NAME."""

    def register(build: SectionBuilder) -> SectionBuilder:
        known = _SECTIONS.get(name)
        if known is not None and known.build.__qualname__ != build.__qualname__:
            raise ValueError(f"two report sections are called {name!r}: {known.build.__module__}, {build.__module__}")
        _SECTIONS[name] = Section(name, template, build)
        return build

    return register


def sections() -> list[Section]:
    """Every registered section, in name order, after importing each module of this room."""
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{__package__}.{module.name}")
    return [_SECTIONS[name] for name in sorted(_SECTIONS)]


def render_inputs(inputs: SectionInputs) -> list[tuple[str, object]]:
    """(template, data) of each section that has something to show, in order."""
    built = [(section.template, section.build(inputs)) for section in sections()]
    return [(template, data) for template, data in built if data is not None]
