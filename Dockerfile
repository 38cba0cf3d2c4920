# syntax=docker/dockerfile:1
# Production image for the Chattergram API.
# Installs the project with NO extras: production talks to external Redis (Stack) and MongoDB,
# so the `embedded` (bundled servers) and `test` extras from pyproject.toml stay out of the image.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build stage: install the project into a self-contained virtualenv ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api ./api
COPY schema ./schema
COPY resolvers ./resolvers
COPY storage ./storage
COPY media ./media
COPY transcription ./transcription
RUN pip install .

# ---- runtime stage ----
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    DATA_DIR=/app/data
RUN groupadd --system --gid 10001 chattergram \
 && useradd --system --uid 10001 --gid chattergram --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin chattergram \
 && mkdir -p /app/data \
 && chown -R chattergram:chattergram /app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY web /app/web
ENV WEB_DIR=/app/web
# /app/data is owned by the app user, so a fresh named volume mounted there inherits that ownership.
USER chattergram
EXPOSE 8000
# No curl in the slim image: probe with the interpreter. urlopen raises on non-2xx -> exit code 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["chattergram", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
