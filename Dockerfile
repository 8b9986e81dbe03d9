# aihub API image for the production stack (docker-compose.yml). Not built here: this
# machine has no Docker engine, so the image is kept plain and the stack is tested without it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends curl libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install .

RUN useradd --create-home --uid 10001 aihub && mkdir -p /app/exports /app/data \
    && chown -R aihub /app
USER aihub

ENV AIHUB_DATA_DIR=/app/data \
    EXPORT_STORAGE_PATH=/app/exports

EXPOSE 8003
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
    CMD curl -fsS http://localhost:8003/health || exit 1

# Migrations run once in the container's start, before the workers fork.
CMD ["sh", "-c", "aihub db upgrade && exec aihub serve --host 0.0.0.0 --port 8003 --workers ${AIHUB_WORKERS:-2} ${AIHUB_SERVE_ARGS:-}"]
