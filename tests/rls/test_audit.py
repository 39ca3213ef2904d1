"""`manage.py rls_audit` passes on the migrated database and fails on each kind of gap (each undone after)."""

from __future__ import annotations

from contextlib import contextmanager

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connections

from core.management.commands.db_bootstrap import admin_conninfo
from core.tables import grants_apply, owner_expression

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _owner(statement: str) -> None:
    with connections["owner"].cursor() as cursor:
        cursor.execute(statement)


def _admin(statement: str) -> None:
    conninfo = admin_conninfo(settings.DATABASE_URL, dbname=settings.DATABASES["default"]["NAME"])
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def _broken(do, undo):
    do()
    try:
        yield
    finally:
        undo()
        grants_apply(connections["owner"])


def _fails_on(match: str) -> None:
    with pytest.raises(CommandError, match=match):
        call_command("rls_audit", verbosity=0)


def test_passes_on_the_migrated_database():
    call_command("rls_audit", verbosity=0)


def test_fails_on_an_unclassified_table():
    with _broken(lambda: _owner("CREATE TABLE leaky_notes (id bigserial PRIMARY KEY, body text)"),
                 lambda: _owner("DROP TABLE leaky_notes")):
        _fails_on("leaky_notes")
    call_command("rls_audit", verbosity=0)


def test_fails_on_an_extra_table_grant():
    app = settings.DB_APP_ROLE
    with _broken(lambda: _owner(f'GRANT SELECT ON djstripe_apikey TO "{app}"'), lambda: None):
        _fails_on("djstripe_apikey")


def test_fails_on_a_readable_secret_column():
    app = settings.DB_APP_ROLE
    with _broken(lambda: _owner(f'GRANT SELECT (password) ON accounts_user TO "{app}"'), lambda: None):
        _fails_on("accounts_user")


def test_fails_on_a_reference_table_the_runtime_role_may_write():
    app = settings.DB_APP_ROLE
    with _broken(lambda: _owner(f'GRANT INSERT ON marketdata_quote TO "{app}"'), lambda: None):
        _fails_on("marketdata_quote")


def test_fails_on_a_policy_that_only_looks_right():
    expression = owner_expression("user_id")
    with _broken(
        lambda: _owner(f"ALTER POLICY tenant_isolation ON portfolios_portfolio USING (true OR {expression})"),
        lambda: _owner(f"ALTER POLICY tenant_isolation ON portfolios_portfolio USING ({expression})"),
    ):
        _fails_on("portfolios_portfolio")


def test_fails_when_rls_is_not_forced():
    with _broken(lambda: _owner("ALTER TABLE trading_order NO FORCE ROW LEVEL SECURITY"),
                 lambda: _owner("ALTER TABLE trading_order FORCE ROW LEVEL SECURITY")):
        _fails_on("trading_order")


def test_fails_on_default_privileges_for_future_tables():
    owner, app = settings.DB_OWNER_ROLE, settings.DB_APP_ROLE
    clause = f'FOR ROLE "{owner}" IN SCHEMA public'
    with _broken(lambda: _owner(f'ALTER DEFAULT PRIVILEGES {clause} GRANT SELECT ON TABLES TO "{app}"'),
                 lambda: _owner(f'ALTER DEFAULT PRIVILEGES {clause} REVOKE SELECT ON TABLES FROM "{app}"')):
        _fails_on("default privilege")


def test_fails_when_the_runtime_role_can_set_role():
    system, app = settings.DB_SYSTEM_ROLE, settings.DB_APP_ROLE
    with _broken(lambda: _admin(f'GRANT "{system}" TO "{app}"'), lambda: _admin(f'REVOKE "{system}" FROM "{app}"')):
        _fails_on("SET ROLE")
