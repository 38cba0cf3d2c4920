# syntax=docker/dockerfile:1
# Production image for the Chattergram API.
# Installs the app's locked dependencies (requirements.lock: exact versions with hashes, no
# extras) in a layer of their own, then the project itself: production talks to external Redis
# and MongoDB, so the `embedded` (bundled servers), `test` and `bench` extras stay out.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build stage: install the project into a self-contained virtualenv ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock changes, not on every source edit.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY api ./api
COPY schema ./schema
COPY resolvers ./resolvers
COPY storage ./storage
COPY media ./media
COPY transcription ./transcription
COPY push ./push
# The project alone (--no-deps): every dependency came from the lock above; pip check proves
# the lock holds all that the project requires.
RUN pip install --no-deps . && pip check

# ---- runtime stage ----
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    DATA_DIR=/app/data \
    PORT=8000 \
    WEB_CONCURRENCY=2
RUN groupadd --system --gid 10001 chattergram \
 && useradd --system --uid 10001 --gid chattergram --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin chattergram \
 && mkdir -p /app/data \
 && chown -R chattergram:chattergram /app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY web /app/web
ENV WEB_DIR=/app/web
USER chattergram
EXPOSE 8000
# No curl in the slim image: probe with the interpreter. urlopen raises on non-2xx -> exit code 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
# Port and worker count from the environment (PORT, WEB_CONCURRENCY; defaults above). `exec`
# makes the app PID 1's direct replacement, so `docker stop`'s SIGTERM reaches it.
CMD ["sh", "-c", "exec chattergram serve --host 0.0.0.0 --port \"$PORT\" --workers \"$WEB_CONCURRENCY\""]
