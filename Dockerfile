# syntax=docker/dockerfile:1.7
# Nexus production image: one image for web (daphne processes), workers, beat, market feed and Discord bot;
# compose.yaml picks the command. Build: docker build -t nexus .

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install .
COPY . .
# collectstatic needs settings but no database or Redis: give it throwaway values.
RUN DJANGO_SETTINGS_MODULE=config.settings.production DJANGO_SECRET_KEY=collectstatic \
    DATABASE_URL=postgresql://x@localhost/x REDIS_URL=redis://localhost:6379/0 \
    /opt/venv/bin/python manage.py collectstatic --no-input

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 curl && rm -rf /var/lib/apt/lists/* \
 && groupadd --system nexus && useradd --system --gid nexus --home /app --shell /usr/sbin/nologin nexus
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=nexus:nexus /app /app
USER nexus
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD curl --fail --silent http://127.0.0.1:8000/healthz || exit 1
# WEB_CONCURRENCY daphne processes (default: the container's CPUs) on one socket (docs/scale-out.md).
ENTRYPOINT ["python", "-m", "config.webserver"]
CMD ["--bind", "0.0.0.0", "--port", "8000", "--", "--proxy-headers"]
