"""The suite runs against real PostgreSQL and Redis (see scripts/nexus.py for which ones).

The test database is created by the same `db_bootstrap` the platform uses, migrated by the owner role,
and used through the runtime roles, so row-level security and the grants of core/tables.py apply to
every test exactly as in production.

Every database test is a committed (transactional) test: `system_context` and `auth_context` run on
connections of their own, which cannot see an enclosing test transaction. After each test the owner
empties every table that holds rows, but Django's own registries (content types, permissions,
migrations): much faster than Django's flush, which truncates every table and re-creates the registries.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connections, transaction
from django.test import Client, TransactionTestCase

from core.rls import auth_context, tenant
from core.tables import TABLES
from tests.factories import UserFactory

KEPT_TABLES = {"django_migrations", "django_content_type", "auth_permission"}


def _truncate_everything(self) -> None:
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relname = ANY(%s)",
            [sorted(KEPT_TABLES)],
        )
        tables = [name for (name,) in cursor.fetchall()]
    # Which tables hold rows, emptied on the system connection (it sees every tenant's rows) with DELETE,
    # much cheaper than TRUNCATE for a few rows; Django's foreign keys are checked at commit.
    probe = " UNION ALL ".join(
        f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")" for name in tables if name in TABLES
    )
    with transaction.atomic(using="system"), connections["system"].cursor() as cursor:
        cursor.execute(probe)
        for (name,) in cursor.fetchall():
            cursor.execute(f'DELETE FROM "{name}"')
    unclassified = [name for name in tables if name not in TABLES]
    if unclassified:
        with connections["owner"].cursor() as cursor:
            cursor.execute("TRUNCATE " + ", ".join(f'"{name}"' for name in unclassified) + " CASCADE")


TransactionTestCase._fixture_teardown = _truncate_everything

_client_login = Client._login


def _login_as_the_user(self, user, backend=None):
    # Signing in updates the user's last_login, a row only its owner (or the auth context) may write.
    with tenant(user.pk):
        return _client_login(self, user, backend)


Client._login = _login_as_the_user
_client_login_with_credentials = Client.login


def _login_in_the_auth_context(self, **credentials):
    # The sign-in lookup by email is the auth context's, as on the login page.
    with auth_context(reason="tests: Client.login"):
        return _client_login_with_credentials(self, **credentials)


Client.login = _login_in_the_auth_context


@pytest.fixture(scope="session")
def django_db_setup(request, django_db_blocker):
    reuse = request.config.getoption("reuse_db", default=False)
    with django_db_blocker.unblock():
        call_command("db_bootstrap", recreate=not reuse, verbosity=0)
        call_command("migrate", database="owner", verbosity=0, interactive=False)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate limits and used TOTP codes live in the Redis cache; each test starts without them."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def user_a(db):
    return UserFactory(email="alice@example.com")


@pytest.fixture
def user_b(db):
    return UserFactory(email="bob@example.com")


def pytest_collection_modifyitems(config, items):
    """Every database test commits (see the module docstring); browser tests run last (slowest)."""
    committed = pytest.mark.django_db(transaction=True, databases="__all__")
    for item in items:
        if item.get_closest_marker("django_db") or {"db", "transactional_db"} & set(item.fixturenames):
            item.add_marker(committed, append=False)
    items.sort(key=lambda item: "tests/e2e/" in str(item.fspath))
