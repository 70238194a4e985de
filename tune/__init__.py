"""The sweep and what is made of it, in rooms that import only downward, in this order:

- `sweep/`: one sweep: its presets, spaces, flags and folder, the Tuner of each architecture, its trials, the
  retrains of the best, and the records it writes (sweep.json, trials.json);
- `track/`: the sweep, its trials and retrains (and a single run) logged to an MLflow tracker, live through the
  sweep's observer hook and afterwards from its folder; imports the sweep, never analysis/ or report/;
- `analysis/`: from a sweep's stored records to numbers: the comparison table, costs, the Pareto front,
  significance and what the search learned; no page, no figure;
- `report/`: the page: report.html, one module and one template partial per section, its figures and words.

A room may import the rooms above it in this list, never one below (tests/test_layers.py); the sweep does not know
the report exists: the command (jobs/sweep.py) calls the one and then the other.
"""
