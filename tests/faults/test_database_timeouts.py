"""The runtime connections' timeouts (config/database.py), which the slow-database drill exercises."""

from __future__ import annotations


def test_runtime_connections_have_lock_and_statement_timeouts(db):
    """What the slow-database drill relies on: PostgreSQL cancels what waits or runs too long."""
    from django.db import connection

    from core.rls import system_context

    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        lock_timeout = cursor.fetchone()[0]
        cursor.execute("SHOW statement_timeout")
        statement_timeout = cursor.fetchone()[0]
    with system_context(reason="tests: the system role's connection"):
        from django.db import connections

        with connections["system"].cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            system_statement_timeout = cursor.fetchone()[0]
    assert (lock_timeout, statement_timeout, system_statement_timeout) == ("15s", "30s", "30s")
