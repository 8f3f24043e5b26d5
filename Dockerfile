# kurz in a container: `kurz serve`, one process, SQLite on the /data volume unless
# KURZ_DATABASE_URL names a PostgreSQL (docs/deploy.md, README "Run with Docker").
#
# BASE_IMAGE: any Debian-like image with python3 (3.11 or newer) and its venv module.
# Where no image registry is reachable, deploy/build-local-base.sh makes one.
ARG BASE_IMAGE=docker.io/library/python:3.13-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A current pip whatever the base ships (bookworm's 23.0 installs sdists the legacy way).
RUN python3 -m venv /opt/kurz && /opt/kurz/bin/pip install --upgrade pip
# .dockerignore lets in only what the install needs: pyproject.toml, README.md, LICENSE,
# constraints.txt, src/.
COPY . /src
# Every extra by default (PostgreSQL, Redis, gRPC, traces): one image for the embedded
# and the scaled setup, pinned to what the tests ran on; traces cost the image 9 MB and
# nothing until OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/tracing.md). `--build-arg
# EXTRAS=postgres,redis` picks fewer; `EXTRAS=` leaves SQLite and HTTP alone.
ARG EXTRAS=postgres,redis,grpc,otel
RUN /opt/kurz/bin/pip install -c /src/constraints.txt "/src${EXTRAS:+[$EXTRAS]}"

FROM ${BASE_IMAGE}
# A fixed uid and gid, so that a volume's owner means the same user in every container.
RUN groupadd --system --gid 10001 kurz \
    && useradd --system --uid 10001 --gid kurz --no-create-home --home-dir /data kurz \
    && mkdir /data && chown kurz:kurz /data
COPY --from=build /opt/kurz /opt/kurz
ENV PATH=/opt/kurz/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    KURZ_HOST=0.0.0.0 \
    KURZ_PORT=8080 \
    KURZ_DATABASE_URL=sqlite:////data/kurz.db
USER kurz
WORKDIR /data
VOLUME /data
# HTTP (KURZ_PORT) and gRPC (KURZ_GRPC_PORT).
EXPOSE 8080 50051
# The slim images have no curl; Python asks /healthz on whatever KURZ_PORT says.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('KURZ_PORT', '8080'), timeout=4)"]
# With SQLite, `kurz serve` migrates the database itself at start; a PostgreSQL is
# migrated once by `kurz migrate` (deploy/compose.scaled.yaml runs it first).
CMD ["kurz", "serve"]
