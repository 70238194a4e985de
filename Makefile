# The two commands a person needs: `make sweep` (the main job) and `make test`.
# Each creates .venv with the pinned stack when it is missing, so a fresh machine needs nothing else.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PRESET ?= quick
OUTPUT ?= results

.PHONY: sweep train test test-fast lint bench bench-sweep bench-serving report dashboard install clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $@

install: $(STAMP)

sweep: $(STAMP)
	$(PY) -m jobs.sweep --preset $(PRESET) --output $(OUTPUT)

train: $(STAMP)
	$(PY) -m jobs.train --model $(or $(MODEL),cnn) --preset $(PRESET) --output $(OUTPUT)

lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP) lint
	$(PY) -m pytest -q --durations=15 tests

# Between edits: the tests that start no Ray and no process and take under ~5 s each (tests/conftest.py fails a
# test here that starts a process without saying so). `make test` is the whole suite, as CI runs it.
test-fast: $(STAMP)
	$(PY) -m pytest -q -rs -n 2 -m "not slow" --no-processes --durations=10 tests

bench: $(STAMP)
	$(PY) -m jobs.bench $(BENCH_ARGS)

# A cnn search of 40 trials: the driver's memory stays flat and nothing is left on the cluster afterwards.
bench-sweep: $(STAMP)
	$(PY) -m jobs.bench_sweep $(BENCH_ARGS)

# The serving measurement of the final retrains, twice in one process: how far one latency figure can be trusted.
bench-serving: $(STAMP)
	$(PY) -m jobs.bench_serving $(BENCH_ARGS)

# Rebuild the newest sweep's comparison and report.html from its stored results (OUTPUT/latest), no training.
report: $(STAMP)
	$(PY) -m jobs.report $(OUTPUT)

# TensorBoard on each sweep under OUTPUT once: --logdir OUTPUT would follow OUTPUT/latest too (jobs/dashboard.py).
dashboard: $(STAMP)
	$(PY) -m jobs.dashboard $(OUTPUT)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

-include mk/*.mk

# Snippets above add their own prerequisites of `test` (the kfp venv, chromium) through TEST_DEPS.
test: $(TEST_DEPS)
