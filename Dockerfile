# syntax=docker/dockerfile:1
# The disvc controller image.
#   docker build --build-arg VERSION=$(sed -n 's/^version *= *//p' setup.cfg) \
#     -t <registry>/disvc-controller:<tag> .
# VERSION is the package version (setup.cfg), written into the image's
# org.opencontainers.image.version label; the build fails when it is missing
# or is not the version of the package it installs, so the label never lies.
# Two stages: the builder turns the project and its dependencies into wheels;
# the runtime stage installs only those wheels (no index, no compiler, no
# source tree) and runs as an unprivileged numeric user, so the Deployment's
# runAsNonRoot/runAsUser 65532 hold without a passwd entry.

# A pinned tag (no digest): bump deliberately, in one place.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# .dockerignore keeps the context to what a wheel needs.
COPY . .
# The project's own wheel first, without resolving anything...
RUN pip wheel --no-deps --wheel-dir /wheels .
# ...then wheels for its dependencies, resolved from the project's metadata.
RUN pip wheel --wheel-dir /wheels /wheels/disvc-*.whl

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION
LABEL org.opencontainers.image.title="disvc-controller" \
      org.opencontainers.image.description="Kubernetes controller for KServe DistributedInferenceService" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Install from the builder's wheels only; the bind mount keeps the wheels
# themselves out of the image's layers.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels disvc
# The label's version is the installed package's, or no image.
RUN python -m disvc.controller --version | grep -qxF "disvc-controller ${VERSION:?pass --build-arg VERSION=<setup.cfg version>}" \
    || { echo "VERSION=${VERSION} is not the package's: $(python -m disvc.controller --version)" >&2; exit 1; }
# 65532: the conventional "nonroot" uid/gid; numeric so Kubernetes can verify
# runAsNonRoot without reading /etc/passwd.
USER 65532:65532
EXPOSE 8080 8443 8081
# Exec form: the controller is PID 1 and receives SIGTERM directly; no shell
# is involved. Liveness and readiness are the Deployment's probes on :8081,
# not a HEALTHCHECK.
ENTRYPOINT ["python", "-m", "disvc.controller"]
