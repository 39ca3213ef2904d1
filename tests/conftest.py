"""The suite runs against real PostgreSQL and Redis (see scripts/nexus.py for which ones).

The test database is created by the same `db_bootstrap` the platform uses, migrated by the owner role,
and used through the runtime role, so row-level security applies to every test exactly as in production.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.factories import UserFactory


@pytest.fixture(scope="session")
def django_db_setup(request, django_db_blocker):
    reuse = request.config.getoption("reuse_db", default=False)
    with django_db_blocker.unblock():
        call_command("db_bootstrap", recreate=not reuse, test_grants=True, verbosity=0)
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
    """Browser tests last: they are the slowest, and a quick failure elsewhere should show first."""
    items.sort(key=lambda item: "tests/e2e/" in str(item.fspath))
