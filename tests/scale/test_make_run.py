"""What `make run` (scripts/nexus.py) decides for the scale-out pieces: the pooler, the workers, the web."""

from __future__ import annotations

import importlib.util
import tempfile
import types
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings

from tests.scale.helpers import ROOT


def _launcher():
    spec = importlib.util.spec_from_file_location("nexus_launcher_scale", ROOT / "scripts" / "nexus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env() -> dict[str, str]:
    server = settings.DATABASES["default"]
    # As make run writes it: the host in the query, so a unix-socket directory (the embedded server) works too.
    host = quote(server["HOST"] or "127.0.0.1", safe="")
    return {
        "DATABASE_URL": f"postgresql://postgres@/{server['NAME']}?host={host}&port={server['PORT'] or 5432}",
        "DB_APP_ROLE": settings.DB_APP_ROLE,
        "DB_SYSTEM_ROLE": settings.DB_SYSTEM_ROLE,
        "DB_AUTH_ROLE": settings.DB_AUTH_ROLE,
    }


@pytest.mark.django_db(transaction=True)
def test_make_run_starts_a_pgbouncer_and_stops_it(monkeypatch):
    launcher = _launcher()
    if launcher._sibling("pgbouncer").pgbouncer_binary() is None:
        pytest.skip("pgbouncer is not installed")
    monkeypatch.setattr(launcher, "DATA", Path(tempfile.mkdtemp(prefix="nexus-data-")))
    launcher.STARTED.clear()
    try:
        added = launcher.start_pooler(_env())
        url = added["DATABASE_POOLER_URL"]
        assert added["DATABASE_POOLER_PREPARED_STATEMENTS"] in {"true", "false"}
        with psycopg.connect(url, user=settings.DB_APP_ROLE) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == settings.DB_APP_ROLE
        assert "pool_mode = transaction" in (launcher.DATA / "pgbouncer" / "pgbouncer.ini").read_text()
    finally:
        launcher.stop_started()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, user=settings.DB_APP_ROLE, connect_timeout=2)


def test_without_the_binary_make_run_connects_directly_and_says_so(monkeypatch, capsys):
    launcher = _launcher()
    monkeypatch.setattr(launcher, "_sibling", lambda name: types.SimpleNamespace(pgbouncer_binary=lambda: None))
    assert launcher.start_pooler(_env()) == {}
    assert "PgBouncer: not installed" in capsys.readouterr().out
    assert launcher.start_pooler({**_env(), "DATABASE_POOLER_URL": "postgresql://x:6432/y"}) == {}
    assert "using DATABASE_POOLER_URL" in capsys.readouterr().out


def test_workers_single_or_per_queue(monkeypatch):
    launcher = _launcher()
    processes = launcher.procfile_processes()
    single = launcher.choose_workers(processes, {"NEXUS_WORKERS": "single"})
    assert "worker" in single and not [p for p in single if p.startswith("worker-")]
    per_queue = launcher.choose_workers(processes, {"NEXUS_WORKERS": "per-queue"})
    assert "worker" not in per_queue
    assert {p for p in per_queue if p.startswith("worker-")} == {f"worker-{q}" for q in settings.CELERY_QUEUE_NAMES}
    monkeypatch.setattr(launcher, "cpu_count", lambda: 2)
    assert "worker" in launcher.choose_workers(processes, {})
    monkeypatch.setattr(launcher, "cpu_count", lambda: 8)
    assert "worker" not in launcher.choose_workers(processes, {})
