# The MLflow tracking server of the --mlflow tests (tests/mlflow_server.py), in a venv of its own: mlflow 3.17.2
# pins pyarrow<26, which clashes with Ray's stack (requirements.txt has the client alone, mlflow-skinny).
# ~20 s on 2 cores (pip's cache warm), 87 packages; compiled on import, as the main venv (see the Makefile).
PYTHON ?= python3
MLFLOW_VENV := .venv-mlflow
MLFLOW_PY := $(MLFLOW_VENV)/bin/python
MLFLOW_STAMP := $(MLFLOW_VENV)/.installed

# As mk/deploy.mk's kfp venv: named here directly, since `test: $(TEST_DEPS)` only sees what came before it.
TEST_DEPS += $(MLFLOW_STAMP)
test: $(MLFLOW_STAMP)

.PHONY: mlflow-install clean-mlflow

$(MLFLOW_STAMP): requirements-mlflow.txt
	test -x $(MLFLOW_PY) || $(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_PY) -m pip install --quiet --no-compile -r requirements-mlflow.txt
	touch $@

mlflow-install: $(MLFLOW_STAMP)

clean-mlflow:
	rm -rf $(MLFLOW_VENV)
