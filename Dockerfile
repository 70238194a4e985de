# The sweep's image: KubeRay's head, workers and job submitter (k8s/), or `docker run --gpus all`.
# Build it with `make image`, which passes RAY_VERSION from versions.env and tags it IMAGE_REPO:IMAGE_TAG.
#
# torch 2.14.1 from PyPI is a CUDA 13 build that brings its own CUDA libraries (the nvidia-* wheels), so the
# small `base` flavour is enough: it carries the NVIDIA container runtime settings and CUDA's forward
# compatibility libraries, where `runtime` or `cudnn` would only add second copies of gigabytes of libraries.
# GPU nodes need a driver that runs CUDA 13 (R580 or newer).
FROM nvidia/cuda:13.0.1-base-ubuntu22.04

LABEL org.opencontainers.image.title="archsweep" \
      org.opencontainers.image.description="Vision architectures compared on MNIST with Ray Train and Ray Tune"

# No default on purpose: versions.env is the only place the version is written.
ARG RAY_VERSION

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Python 3.11 from the deadsnakes PPA: Ubuntu 22.04's own python3 is 3.10. wget is for KubeRay's health
# probes, which call it inside the Ray containers.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates gnupg software-properties-common \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv wget \
    && apt-get purge -y --auto-remove software-properties-common gnupg \
    && rm -rf /var/lib/apt/lists/*

RUN if [ -z "${RAY_VERSION}" ]; then echo "set --build-arg RAY_VERSION (make image reads versions.env)" >&2; exit 1; fi \
    && python3.11 -m venv "${VIRTUAL_ENV}"

# Dependencies before code, so a code change rebuilds only the small layers at the end. Ray is named a second
# time with versions.env's version: if requirements.txt pins another, pip refuses and the build stops here.
# The venv stays owned by root, so the running user cannot change what it executes.
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt "ray[default,tune,train]==${RAY_VERSION}" \
    && python -c "import ray, sys; sys.exit(ray.__version__ != '${RAY_VERSION}' and 'ray ' + ray.__version__)" \
    && rm /tmp/requirements.txt

# The uid and gid the Kubernetes manifests run as (runAsUser: 1000); it owns its home and nothing else.
RUN groupadd --gid 1000 ray \
    && useradd --uid 1000 --gid 1000 --create-home --shell /bin/bash ray

WORKDIR /app
# Importable from any working directory: Ray starts job drivers and workers wherever it likes.
ENV PYTHONPATH=/app
COPY jobs/ jobs/
COPY models/ models/
COPY tune/ tune/
# The pins each node's packages are checked against before a sweep trains (jobs/engine/run/node_check.py).
COPY requirements.txt requirements.txt

USER 1000:1000
CMD ["python", "-m", "jobs.sweep", "--help"]
