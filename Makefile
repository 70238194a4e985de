# The two commands a person needs: `make sweep` (the main job) and `make test`.
# Each creates .venv with the pinned stack when it is missing, so a fresh machine needs nothing else.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PRESET ?= quick
OUTPUT ?= results

.PHONY: sweep train test test-setup test-fast lint bench bench-sweep bench-serving report dashboard install clean

# pip byte-compiles every file it installs, 19k of them (~40 s of a ~90 s install on 2 cores); --no-compile leaves
# that to Python, which compiles the ~4k modules a run imports on their first import and keeps them. That needs
# bytecode writing on: where the machine turns it off (PYTHONDONTWRITEBYTECODE=1, as our CI's does), every Ray
# worker and command would compile torch again at each start (a fresh `make test` took 14.5 min that way, not 10).
unexport PYTHONDONTWRITEBYTECODE

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile -r requirements.txt -r requirements-dev.txt
	touch $@

install: $(STAMP)

sweep: $(STAMP)
	$(PY) -m jobs.sweep --preset $(PRESET) --output $(OUTPUT)

train: $(STAMP)
	$(PY) -m jobs.train --model $(or $(MODEL),cnn) --preset $(PRESET) --output $(OUTPUT)

lint: $(STAMP)
	$(PY) -m ruff check .

# What `make test` needs installed, side by side: the venvs (.venv, and those mk/*.mk add to TEST_DEPS: kfp's,
# the MLflow server's) and chromium. A pip run waits on the disk about as much as on a core, so together they take
# about the longest one's time on 2 cores, not their sum. Its recipe is read once every makefile is, so TEST_DEPS
# is whole there; the `test: $(TEST_DEPS)` line below then finds each done.
test-setup:
	$(MAKE) --no-print-directory -j3 $(STAMP) $(TEST_DEPS)

test: test-setup lint
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=15 tests  # two workers: see tests/conftest.py

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
