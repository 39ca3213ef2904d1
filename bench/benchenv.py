"""The environment every benchmark runs in: a database of its own (`<database>_<suffix>`, recreated by the
bench), its own Redis key prefix, DEBUG off (it keeps every query in memory) and quiet logs."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit, urlunsplit


def bench_environment(suffix: str, *, redis_url: str | None = None, **settings: str) -> dict[str, str]:
    """os.environ for a bench named by `suffix`; `redis_url` for a bench that starts a redis-server of its
    own (REDIS_URL is then not needed); `settings` are further variables, set as given."""
    env = dict(os.environ)
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    if not env.get("DATABASE_URL") or not env.get("REDIS_URL"):
        sys.exit(f"Set DATABASE_URL and REDIS_URL (the bench uses <database>_{suffix} and its own key prefix).")
    url = urlsplit(env["DATABASE_URL"])
    name = url.path.lstrip("/") or "nexus"
    if not name.endswith(f"_{suffix}"):
        env["DATABASE_URL"] = urlunsplit(url._replace(path=f"/{name}_{suffix}"))
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    env["DJANGO_DEBUG"] = "false"
    env["REDIS_KEY_PREFIX"] = f"nexus-{suffix.replace('_', '-')}"
    env["LOG_LEVEL"] = "WARNING"
    env.update(settings)
    return env
