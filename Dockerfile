# The facetoface service image: `make image` (see README "Deploying").
#
# Both stages start from PYTHON_IMAGE, so the venv built in the first runs on the second's
# Python. The default is the official image; where no image registry is reachable, pass a
# base made from Debian's packages (python3 + python3-venv), e.g. the tests' own:
#   make image PYTHON_IMAGE=facetoface-test-base:bookworm
#
# Few instructions on purpose: with the legacy builder every instruction, even LABEL, runs in
# a container of its own, and on a copying storage driver (vfs) each costs a copy of the root
# filesystem; the metadata also comes before the venv, while that filesystem is small.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# --- builder: the locked dependencies and the project's wheel, in a venv -------------------
FROM ${PYTHON_IMAGE} AS builder
# Lets a test remove this stage's leftover image after a build (the legacy builder keeps it
# as an untagged image) without touching anything else.
LABEL dev.facetoface.stage=builder
# Dependencies first: this layer is reused until the lock changes, not on every code change.
COPY requirements/main.txt requirements/build.txt /src/requirements/
# The runtime venv gets no pip of its own (nothing installs into it at run time): a separate
# build venv holds pip and setuptools and installs into it with `pip --python`. Wheels only,
# all hashed: no compiler is needed, and nothing unlocked gets in.
RUN export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore \
 && python3 -m venv --without-pip /opt/facetoface \
 && python3 -m venv /opt/build \
 && /opt/build/bin/pip install --quiet --require-hashes -r /src/requirements/build.txt \
 && /opt/build/bin/pip --python /opt/facetoface/bin/python install --quiet \
      --require-hashes --only-binary=:all: -r /src/requirements/main.txt
# The rest of the context (.dockerignore lets in only pyproject.toml, README.md, src/ and the
# database init script).
COPY . /src/
# The project as a wheel, without dependencies: they are exactly the locked ones above.
RUN export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore \
 && cd /src \
 && /opt/build/bin/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir /dist . \
 && /opt/build/bin/pip --python /opt/facetoface/bin/python install --quiet --no-deps \
      /dist/facetoface-*.whl \
 && install -m 0755 deploy/image/facetoface_db_init.py /opt/facetoface/bin/facetoface-db-init

# --- the image: Python, the venv, a non-root user; no compiler, no pip in the venv ----------
FROM ${PYTHON_IMAGE}
ARG VERSION=0.0.0 REVISION=unknown
LABEL org.opencontainers.image.title="facetoface" \
      org.opencontainers.image.description="Backend for AI video mentor sessions on Tavus's Conversational Video Interface" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# No ENVIRONMENT here: the operator says where this runs (production refuses development
# secrets; a baked-in value would hide a forgotten setting). PYTHONDONTWRITEBYTECODE: the
# venv is compiled at install, and the root filesystem may be read-only.
ENV PATH=/opt/facetoface/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
# uvicorn drains on SIGTERM: it stops accepting, finishes the requests in flight, then exits.
STOPSIGNAL SIGTERM
# Liveness without curl (not in the image): Python's urllib, on the port `serve` listens on.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
ENTRYPOINT ["facetoface"]
CMD ["serve", "--host", "0.0.0.0"]
# A fixed uid/gid, so Kubernetes' runAsUser/fsGroup and volume ownership can name it.
RUN groupadd --system --gid 10001 facetoface \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/facetoface --create-home \
      --shell /usr/sbin/nologin facetoface
WORKDIR /home/facetoface
USER 10001:10001
COPY --from=builder /opt/facetoface /opt/facetoface
