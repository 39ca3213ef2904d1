"""PgBouncer in transaction mode: clients interleaving users on the same server connection never see each
other's tenant (the setting is transaction-local); and why nothing may be session-level."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings

from config.database import database_settings
from tests.factories import UserFactory
from tests.factories.portfolios import PortfolioFactory
from tests.scale.helpers import ROOT, child_env
from tests.scale.pgbouncer_fixture import running_pgbouncer

pytestmark = pytest.mark.django_db(transaction=True)
ROUNDS = 300


def test_two_processes_alternating_users_through_one_server_connection_stay_isolated():
    users = [UserFactory() for _ in range(4)]
    for user in users:
        PortfolioFactory(user=user, name=f"portfolio of {user.pk}")
    # One server connection for everybody: every transaction of either client runs on it, one after the other.
    with running_pgbouncer(pool_size=1) as (port, _):
        env = child_env(DATABASE_POOLER_URL=f"postgresql://127.0.0.1:{port}/")
        clients = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.scale.pooler_client", f"{a.pk},{b.pk}", str(ROUNDS)],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for a, b in (users[:2], users[2:])
        ]
        reports = []
        for client in clients:
            out, err = client.communicate(timeout=120)
            assert client.returncode == 0, err[-3000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
    for report in reports:
        assert report["port"] == str(port), "the client went through the pooler"
        assert report["errors"] == []
        assert report["rounds"] == ROUNDS
    # Both clients' transactions ran on the same single server process.
    assert reports[0]["backends"] == reports[1]["backends"] and len(reports[0]["backends"]) == 1


def test_a_session_level_setting_would_leak_to_the_next_client():
    """Why the tenant must never be set with set_config(..., false) (or SET): the pooler hands the server
    connection to the next client as it is."""
    role = settings.DATABASES["default"]["USER"]
    dbname = settings.DATABASES["default"]["NAME"]
    with running_pgbouncer(pool_size=1) as (port, _):
        params = {"host": "127.0.0.1", "port": port, "dbname": dbname, "user": role, "autocommit": True}
        with psycopg.connect(**params) as first, psycopg.connect(**params) as second:
            first.execute("SELECT set_config('app.user_id', '424242', false)")
            leaked = second.execute("SELECT current_setting('app.user_id', true)").fetchone()[0]
            first.execute("SELECT set_config('app.user_id', '', false)")
    assert leaked == "424242"


# SQL as the code writes it (upper-case keywords); set_config with is_local false in any case.
SESSION_STATE = re.compile(
    r"set_config\([^)]*,\s*(?i:false)\s*\)|\bSET\s+(SESSION\s|ROLE\s|app\.|search_path|statement_timeout|TIME ZONE)"
    r"|pg_advisory_lock\(|\bLISTEN\s+\w|\bWITH\s+HOLD\b|CREATE\s+TEMP"
)


def test_the_code_keeps_no_session_state():
    """Transaction pooling's rule: what a connection remembers between transactions (session settings,
    session advisory locks, LISTEN, held cursors, temporary tables) may belong to another client next."""
    offenders = []
    for app in ("accounts", "alerts", "billing", "bot", "config", "core", "marketdata", "portfolios", "trading"):
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts or path.name == "rls_audit.py":  # the audit reads role grants, says "SET ROLE"
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if SESSION_STATE.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_pooler_url_routes_the_runtime_roles_only():
    identities = {
        "default": (None, "app", ""), "owner": (None, "owner", ""), "system": (None, "sys", ""), "auth": (None, "auth", ""),
    }
    databases = database_settings(
        admin_url="postgresql://postgres@db.internal:5432/nexus", identities=identities,
        pooler_url="postgresql://pooler.internal:6432/nexus",
    )
    for alias in ("default", "system", "auth"):
        assert (databases[alias]["HOST"], databases[alias]["PORT"]) == ("pooler.internal", "6432")
        assert databases[alias]["DISABLE_SERVER_SIDE_CURSORS"] is True
        assert "options" not in databases[alias]["OPTIONS"]  # PgBouncer refuses the startup parameter
    assert (databases["owner"]["HOST"], databases["owner"]["PORT"]) == ("db.internal", "5432")  # migrations
    direct = database_settings(admin_url="postgresql://postgres@db.internal:5432/nexus", identities=identities)
    assert direct["default"]["HOST"] == "db.internal" and "lock_timeout" in direct["default"]["OPTIONS"]["options"]
    pooled = database_settings(
        admin_url="postgresql://postgres@db.internal:5432/nexus", identities=identities, pool_size=5
    )
    assert pooled["default"]["OPTIONS"]["pool"]["max_size"] == 5 and pooled["default"]["CONN_MAX_AGE"] == 0
