# The cluster side (docs/cluster.md): `make image push` for the container, `make pipeline` for Kubeflow.
# versions.env names RAY_VERSION, IMAGE_REPO and IMAGE_TAG once, for make, kustomize and the Dockerfile.
include versions.env

PYTHON ?= python3
DOCKER ?= docker
IMAGE := $(IMAGE_REPO):$(IMAGE_TAG)
KFP_VENV := .venv-kfp
KFP_PY := $(KFP_VENV)/bin/python
KFP_STAMP := $(KFP_VENV)/.installed
PIPELINE_YAML ?= dist/archsweep-pipeline.yaml

# tests/test_kubeflow.py compiles the pipeline in .venv-kfp, so `make test` needs it. make expands a rule's
# prerequisites when it reads the rule, so `test: $(TEST_DEPS)` only sees what was added above it: this
# file names its own stamp directly rather than rely on where the main Makefile writes that line.
TEST_DEPS += $(KFP_STAMP)
test: $(KFP_STAMP)

.PHONY: image push pipeline kfp-install clean-kfp

image:
	$(DOCKER) build --build-arg RAY_VERSION=$(RAY_VERSION) --tag $(IMAGE) .

push: image
	$(DOCKER) push $(IMAGE)

# kfp pins protobuf 6 and older google-* packages, which clash with the Ray/torch stack: a venv of its own.
$(KFP_STAMP): requirements-kfp.txt
	test -x $(KFP_PY) || $(PYTHON) -m venv $(KFP_VENV)
	$(KFP_PY) -m pip install --quiet --no-compile -r requirements-kfp.txt  # compiled on import: see the Makefile
	touch $@

kfp-install: $(KFP_STAMP)

pipeline: $(KFP_STAMP)
	$(KFP_PY) k8s/kubeflow/pipeline.py --output $(PIPELINE_YAML)

clean-kfp:
	rm -rf $(KFP_VENV) dist
