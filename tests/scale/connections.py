"""Counting the PostgreSQL connections a daphne process opens for a number of signed-in page views
(pg_stat_database.sessions of the test database, read after the process has stopped so every session is
counted). Used by tests/scale/test_connections.py and bench/db_connections.py."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import psycopg
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.cache import SessionStore

from tests.scale.helpers import ROOT, child_env, free_port, stop, wait_for


def session_cookie(user) -> str:
    """A signed-in session, stored where the web processes read it (the Redis cache)."""
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}"


def sessions_opened() -> int:
    server = settings.DATABASES["owner"]
    conninfo = {"host": server["HOST"] or "127.0.0.1", "port": server["PORT"] or 5432, "user": "postgres", "dbname": "postgres"}
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", [server["NAME"]]).fetchone()
    return int(row[0])


def _get(port: int, path: str, cookie: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        response.read()
        return response.status


def connections_for(*, cookie: str, requests: int, path: str = "/dashboard/", **env: str) -> dict:
    """Serve `requests` page views from one daphne process with `env`; the connections it opened."""
    port = free_port()
    before = sessions_opened()
    web = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT, env=child_env(**env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _get(port, "/healthz", "") == 200, timeout=60, what="daphne")
        started = time.monotonic()
        statuses = [_get(port, path, cookie) for _ in range(requests)]
        seconds = time.monotonic() - started
    finally:
        stop(web)
    # The stopped process's sessions are all reported; poll until the counter settles.
    counts = [sessions_opened()]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(0.5)
        counts.append(sessions_opened())
        if counts[-1] == counts[-2] == counts[-3 if len(counts) > 2 else -2]:
            break
    opened = counts[-1] - before
    return {
        "requests": requests,
        "statuses": sorted(set(statuses)),
        "connections": opened,
        "per_request": round(opened / requests, 2),
        "seconds": round(seconds, 2),
    }
