# DreamRelay's container image: Debian's python3 and a venv of the pinned dependencies.
#   docker build -t dreamrelay .
#   docker run -p 8000:8000 -e DREAMRELAY_PUBLIC_URL=http://localhost:8000 -v dreamrelay:/var/lib/dreamrelay dreamrelay
# `make image` builds it with docker or podman (and, where no registry is reachable, the base from Debian's
# packages); `make image-test` proves it. Compose and scaling out: docs/deploy.md.

# ---- build: a venv in /opt/dreamrelay --------------------------------------------------------------------
# Debian's pip installs into it (`--python`), so the venv itself never holds pip, setuptools or wheel.
# pip reads an optional build secret `pip.conf` (and `host-ca`, the CA bundle it may name as
# /run/host-ca.crt): for sites that reach the package index through a proxy of their own (`make image`
# passes this machine's). Secrets leave nothing in any layer; without them pip uses its defaults.
FROM debian:bookworm-slim AS python
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv --without-pip /opt/dreamrelay

# The dependency list alone, so that their install is reused until it (or constraints.txt) changes,
# whatever else pyproject.toml and src/ do.
FROM python AS requirements
COPY pyproject.toml /
RUN python3 -c "import tomllib; print(*tomllib.load(open('/pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
      > /requirements.txt

# The dependencies, without the tests, type stubs and Cython sources some wheels ship.
FROM python AS dependencies
COPY --from=requirements /requirements.txt /src/
COPY constraints.txt /src/
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    --mount=type=secret,id=host-ca,target=/run/host-ca.crt \
    pip --python /opt/dreamrelay/bin/python install --no-cache-dir --disable-pip-version-check \
      -c /src/constraints.txt -r /src/requirements.txt \
 && find /opt/dreamrelay/lib -depth -type d -name tests -exec rm -rf {} + \
 && find /opt/dreamrelay/lib \( -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' \) -delete

# The project itself; what it added to the venv (its package, metadata and `dreamrelay` script) is copied
# to /added, so that the runtime image takes the dependencies and the project as two layers.
FROM dependencies AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    --mount=type=secret,id=host-ca,target=/run/host-ca.crt \
    touch /tmp/before && sleep 1 \
 && pip --python /opt/dreamrelay/bin/python install --no-cache-dir --disable-pip-version-check --no-deps . \
 && mkdir /added \
 && find /opt/dreamrelay -newer /tmp/before ! -type d -exec cp --parents --no-dereference {} /added/ \;

# ---- runtime: Debian's python3, the venv, a user without privileges -------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --home-dir /var/lib/dreamrelay --no-create-home \
      --shell /usr/sbin/nologin dreamrelay \
 && mkdir -p /var/lib/dreamrelay \
 && chown dreamrelay:dreamrelay /var/lib/dreamrelay
COPY --from=dependencies /opt/dreamrelay /opt/dreamrelay
COPY --from=build /added/ /

ENV PATH=/opt/dreamrelay/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DREAMRELAY_DATA_DIR=/var/lib/dreamrelay \
    DREAMRELAY_HOST=0.0.0.0 \
    DREAMRELAY_PORT=8000
# Links in answers (media, callbacks) use DREAMRELAY_PUBLIC_URL: set it to how customers reach the server
# (the start banner says which one is in use).
USER 10001:10001
WORKDIR /var/lib/dreamrelay
VOLUME ["/var/lib/dreamrelay"]
EXPOSE 8000
STOPSIGNAL SIGTERM
# Workers serve no HTTP: run them with --no-healthcheck (or a check of their --metrics-port).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('DREAMRELAY_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["dreamrelay"]
CMD ["serve"]

# Last, so that a new commit only changes this layer. `make image` passes them from the checkout.
ARG VERSION=0.1.0
ARG REVISION=""
ARG SOURCE=""
LABEL org.opencontainers.image.title="DreamRelay" \
      org.opencontainers.image.description="Self-hosted relay gateway for asynchronous AI generation tasks (Luma Dream Machine first)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="NOASSERTION" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
