# syntax=docker/dockerfile:1
# tillsync's images. The default target is the production worker: the product alone (no
# simulators), run as a non-root user. docker-compose.yml also builds `--target sim`, the
# simulators for its demo, which a deployment never needs.
#
#   docker build -t tillsync .                         # the worker
#   docker build -t tillsync-sim --target sim .        # the simulators (demo only)
#
# Dependencies are installed from pyproject.toml alone, before any source is copied: a change
# to the code rebuilds the wheel and the one layer that installs it, not the dependencies.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS python
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# -- wheels: built here, installed by the stages below, the source itself never shipped -----

FROM python AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY scripts/backend ./scripts/backend
COPY tillsync ./tillsync
COPY streams ./streams
COPY connectors ./connectors
COPY schemas ./schemas
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM build AS sim-build
COPY simulators ./simulators
RUN pip wheel --no-deps --wheel-dir /wheels-sim ./simulators

# -- runtime: the user, the product's dependencies, the healthcheck --------------------------

FROM python AS runtime
RUN groupadd --system --gid 10001 tillsync \
 && useradd --system --uid 10001 --gid tillsync --home-dir /app --no-create-home \
            --shell /usr/sbin/nologin tillsync \
 && install -d -o tillsync -g tillsync /app /var/lib/tillsync
WORKDIR /app
COPY deploy/pyproject_deps.py pyproject.toml /tmp/deps/
RUN python /tmp/deps/pyproject_deps.py /tmp/deps/pyproject.toml > /tmp/deps/requirements.txt \
 && pip install -r /tmp/deps/requirements.txt \
 && rm -rf /tmp/deps
COPY --chmod=755 deploy/healthcheck.py /usr/local/bin/tillsync-healthcheck
# inside a container the worker serves /metrics and /health on every interface; its RocksDB
# tables go to a directory its user owns (mount a volume there to keep them)
ENV TILLSYNC_WEB_HOST=0.0.0.0 \
    TILLSYNC_DATA_DIR=/var/lib/tillsync

# -- sim: the simulators, for docker-compose's demo ------------------------------------------

FROM runtime AS sim
COPY deploy/pyproject_deps.py simulators/pyproject.toml /tmp/deps/
RUN python /tmp/deps/pyproject_deps.py /tmp/deps/pyproject.toml tillsync > /tmp/deps/requirements.txt \
 && pip install -r /tmp/deps/requirements.txt \
 && rm -rf /tmp/deps
RUN --mount=type=bind,from=build,source=/wheels,target=/tmp/wheels \
    --mount=type=bind,from=sim-build,source=/wheels-sim,target=/tmp/wheels-sim \
    pip install --no-deps /tmp/wheels/*.whl /tmp/wheels-sim/*.whl \
 && pip check
USER 10001:10001
EXPOSE 8701 8702
# docker-compose.yml names the simulator to run and its healthcheck (/_sim/health on its port)
CMD ["tillsync", "sim", "--help"]

# -- worker: the production image, the default target (last) --------------------------------

FROM runtime AS worker
RUN --mount=type=bind,from=build,source=/wheels,target=/tmp/wheels \
    pip install --no-deps /tmp/wheels/*.whl \
 && pip check
# numeric, so that a runtime that insists on a non-root user (runAsNonRoot) can verify it
USER 10001:10001
EXPOSE 6066
HEALTHCHECK --interval=10s --timeout=5s --start-period=90s --retries=3 \
    CMD ["tillsync-healthcheck"]
CMD ["tillsync", "worker"]
