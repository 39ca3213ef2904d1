"""A database outage: pages answer 503 with Retry-After (HTML, problem+json under /api/), not 500, and
recover by themselves; Celery tasks retry with backoff instead of failing."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from celery.signals import task_retry
from django.db import OperationalError, connections
from django.test import Client

from config.celery import app
from tests.scale.helpers import ROOT, child_env, free_port, stop, wait_for
from tests.scale.pgbouncer_fixture import pgbouncer_module, running_pgbouncer

pytestmark = pytest.mark.django_db(transaction=True)


def _get(port: int, path: str) -> tuple[int, dict, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Accept": "text/html"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - loopback
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_pages_answer_503_while_the_database_is_away_and_recover():
    with running_pgbouncer(pool_size=5) as (pooler_port, process):
        web_port = free_port()
        web = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(web_port), "config.asgi:application"],
            cwd=ROOT, env=child_env(DATABASE_POOLER_URL=f"postgresql://127.0.0.1:{pooler_port}/"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: _get(web_port, "/healthz")[0] == 200, timeout=60, what="daphne")
            assert _get(web_port, "/accounts/login/")[0] == 200  # the auth context reads the database

            pgbouncer = pgbouncer_module()
            pgbouncer.stop(process)  # the port is closed now
            status, headers, body = _get(web_port, "/accounts/login/")
            assert status == 503 and headers["Retry-After"] == "5"
            assert "Back in a moment" in body
            status, headers, body = _get(web_port, "/api/v1/portfolios/")
            assert status == 503 and headers["Retry-After"] == "5"
            assert headers["Content-Type"] == "application/problem+json"
            assert json.loads(body)["title"] == "Service unavailable"
            assert _get(web_port, "/healthz")[0] == 200  # liveness does not depend on the database
            status, headers, body = _get(web_port, "/readyz")
            assert status == 503 and json.loads(body)["checks"]["database"].startswith("error")
            assert headers["Retry-After"] == "5"

            # The pooler comes back on the same port: the next requests are served again.
            restarted = pgbouncer.start(
                pgbouncer.pgbouncer_binary(), _ini_of(process), port=pooler_port
            )
            try:
                wait_for(lambda: _get(web_port, "/accounts/login/")[0] == 200, timeout=30, what="recovery")
            finally:
                pgbouncer.stop(restarted)
        finally:
            stop(web)


def _ini_of(process: subprocess.Popen) -> Path:
    return Path(process.args[-1])


@pytest.fixture
def database_away():
    """The runtime connections of this process point at a closed port."""
    closed = free_port()
    saved = {}
    for alias in ("default", "system", "auth"):
        connections[alias].close()
        saved[alias] = dict(connections[alias].settings_dict)
        connections[alias].settings_dict.update({"HOST": "127.0.0.1", "PORT": str(closed)})
    yield
    for alias, settings_dict in saved.items():
        connections[alias].close()
        connections[alias].settings_dict.update(settings_dict)


def test_every_task_retries_a_database_outage():
    app.loader.import_default_modules()
    tasks = [task for name, task in app.tasks.items() if not name.startswith("celery.")]
    assert len(tasks) > 15
    for task in tasks:
        assert any(issubclass(OperationalError, kind) for kind in task.autoretry_for), task.name
        assert task.max_retries and task.max_retries >= 5, task.name


def test_a_task_meeting_an_outage_is_retried_with_backoff(database_away):
    retries = []

    def count(sender=None, request=None, reason=None, **kwargs):
        retries.append((request.retries, type(getattr(reason, "exc", reason)).__name__))

    task_retry.connect(count)
    try:
        result = app.tasks["marketdata.trim_ticks"].apply()
    finally:
        task_retry.disconnect(count)
    task = app.tasks["marketdata.trim_ticks"]
    # Retried up to max_retries (eagerly here: a worker waits the growing backoff between attempts).
    assert len(retries) == task.max_retries
    assert {name for _, name in retries} == {"OperationalError"}
    assert result.failed() and isinstance(result.result, OperationalError)
    assert task.retry_backoff and task.retry_backoff_max >= 60


def test_the_503_in_process(database_away):
    client = Client(raise_request_exception=False)
    page = client.get("/accounts/login/")
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert "Back in a moment" in page.content.decode()
    api = client.get("/api/v1/portfolios/")
    assert api.status_code == 503 and api["Content-Type"] == "application/problem+json"
    assert api.json()["detail"].startswith("The database is unavailable")
    assert client.get("/healthz").status_code == 200


def test_the_web_pool_tries_to_reconnect_every_second_not_with_doubling_waits():
    """After an outage the pool's next connection attempt is at most about a second away, however long the
    database was down (psycopg_pool doubles the wait by default: 16 s after a 15 s outage)."""
    from psycopg_pool.base import AttemptWithBackoff

    attempt = AttemptWithBackoff(timeout=300)
    delays = []
    for second in range(30):  # one failed attempt after another, as during a 30 s outage
        attempt.update_delay(float(second))
        delays.append(attempt.delay)
    assert max(delays) <= 1.1
