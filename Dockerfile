# ragflow-migrate: the init-container image that upgrades a RAGFlow MySQL database ahead of the RAGFlow pods.
#
#   docker build -t ragflow-migrate:0.1.0 --build-arg VERSION=0.1.0 .          (production, from PyPI)
#   make image                                                     (this project's machines: buildah, offline)
#
# Two stages: `build` makes a virtualenv from the lock file (requirements/runtime.lock, hashes required) and
# the package's own wheel, byte-compiled; the runtime stage holds that virtualenv and nothing else of the
# build. It runs as a numeric non-root user with a read-only root filesystem: the tool writes nothing but
# the termination-message file (and nothing at all when that is not writable).
#
# Offline builds (no registry reachable inside the build): download the wheels on the host, mount them at
# /wheels and pass PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels (image/build.sh does exactly that).

# The production base. This project's machines pass a debootstrap-made bookworm + python3 instead
# (image/build-base.sh), because public base images cannot be pulled there.
ARG BASE_IMAGE=python:3.12-slim-bookworm

# ------------------------------------------------------------------------------------------------------
# checkov:skip=CKV_DOCKER_7: the base is a build argument whose default is a pinned version tag (3.12-slim-bookworm)
FROM ${BASE_IMAGE} AS build

ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python3 -m venv /opt/ragflow-migrate

# Dependencies first (their layer survives source changes). The lock file when it exists; the glob keeps
# the build working before it does, and the package's exact pins in pyproject.toml apply then.
COPY pyproject.toml requirements/runtime.loc[k] ./
RUN if [ -f runtime.lock ]; then \
        /opt/ragflow-migrate/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: -r runtime.lock; \
    fi

COPY src/ src/
# (pyproject.toml again only so that the globs have something to match before README/LICENSE exist)
COPY pyproject.toml README.m[d] LICENS[E] ./
# With the lock, every dependency is already installed and checked against its hash: the package goes in
# with --no-deps. Without it, pip resolves the pins of pyproject.toml. Then pip and setuptools leave the
# venv, and everything is byte-compiled for a read-only filesystem: hash-based byte-code that is never
# re-checked against the sources, so it stays valid whatever mtimes the copy into the next stage leaves.
RUN /opt/ragflow-migrate/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
    && if [ -f runtime.lock ]; then \
           /opt/ragflow-migrate/bin/pip install --no-cache-dir --no-deps /dist/ragflow_migrate-*.whl; \
       else \
           /opt/ragflow-migrate/bin/pip install --no-cache-dir /dist/ragflow_migrate-*.whl; \
       fi \
    && /opt/ragflow-migrate/bin/pip check \
    && /opt/ragflow-migrate/bin/python -m pip uninstall --yes --quiet pip setuptools \
    && find /opt/ragflow-migrate -depth -type d -name __pycache__ -exec rm -rf {} + \
    && /opt/ragflow-migrate/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/ragflow-migrate/lib

# ------------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}

ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE_URL=
LABEL org.opencontainers.image.title="ragflow-migrate" \
      org.opencontainers.image.description="Upgrades a RAGFlow MySQL database (schema and model data) ahead of the RAGFlow pods" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0"

# A named user for `ps` and `id`; Kubernetes runs it by number (runAsUser: 10001, runAsNonRoot).
RUN groupadd --gid 10001 ragflow-migrate \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin ragflow-migrate

COPY --from=build /opt/ragflow-migrate /opt/ragflow-migrate

# The official slim image ships the standard library without byte-code; compile what the tool imports
# (importing every module of the package pulls it in), so that no run compiles anything in memory.
RUN /opt/ragflow-migrate/bin/python -c "import importlib, pkgutil, ragflow_migrate as p; [importlib.import_module(m.name) for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.') if not m.name.endswith('.__main__')]"

ENV PATH=/opt/ragflow-migrate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

# checkov:skip=CKV_DOCKER_2: a run-to-completion CLI has no health to check; Kubernetes ignores HEALTHCHECK
WORKDIR /tmp
USER 10001:10001
ENTRYPOINT ["ragflow-migrate"]
CMD ["run"]
