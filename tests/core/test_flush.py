"""Rows committed by a transactional test do not leak into the next one.

Every database test commits (tests/conftest.py), and the suite empties the database after each one. Each
test here commits its own rows, runs that emptying exactly as it runs between two tests, and checks what is
left: none of them depends on another test having run before it.
"""

import pytest
from django.db import connections
from django.test import TransactionTestCase

from core.audit import audit_record
from core.models import AuditLog
from core.rls import system_context
from tests.conftest import KEPT_TABLES, _truncate_everything
from tests.factories import UserFactory
from tests.rls.seeding import seed_every_table

pytestmark = pytest.mark.django_db


def _empty_as_between_two_tests() -> None:
    TransactionTestCase._fixture_teardown(None)


def _rows_per_table() -> dict[str, int]:
    """Every table's row count, as the system role sees it (it bypasses row-level security)."""
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1"
        )
        tables = [name for (name,) in cursor.fetchall()]
    counts = {}
    with system_context(reason="test: count every table's rows"), connections["system"].cursor() as cursor:
        for name in tables:
            cursor.execute(f'SELECT count(*) FROM "{name}"')  # noqa: S608 - names from the catalog
            counts[name] = cursor.fetchone()[0]
    return counts


def test_every_database_test_commits_and_is_emptied_by_the_suite(request):
    marker = request.node.get_closest_marker("django_db")
    assert marker.kwargs == {"transaction": True, "databases": "__all__"}
    assert TransactionTestCase._fixture_teardown is _truncate_everything


def test_a_committed_user_and_audit_row_are_gone_after_the_emptying():
    user = UserFactory(email="leak@example.com")
    audit_record(action="test.leak", user=user, actor=user)
    with system_context(reason="test: the rows are committed"):
        assert AuditLog.objects.filter(action="test.leak", user=user).exists()
        assert type(user).objects.filter(email="leak@example.com").exists()

    _empty_as_between_two_tests()

    with system_context(reason="test: look for leaked rows"):
        assert not type(user).objects.filter(email="leak@example.com").exists()
        assert not AuditLog.objects.filter(action="test.leak").exists()


def test_a_row_in_every_table_is_gone_and_djangos_registries_are_kept():
    a, b = UserFactory(email="flush-a@example.com"), UserFactory(email="flush-b@example.com")
    seeded = seed_every_table(users=[a, b])
    before = _rows_per_table()
    filled = {name for name, count in before.items() if count and name not in KEPT_TABLES}
    assert set(seeded) <= filled and len(filled) > 20, "the seeding wrote into every tenant and identity table"

    _empty_as_between_two_tests()

    after = _rows_per_table()
    assert {name: count for name, count in after.items() if count and name not in KEPT_TABLES} == {}
    assert {name: after[name] for name in KEPT_TABLES} == {name: before[name] for name in KEPT_TABLES}
    assert all(after[name] > 0 for name in KEPT_TABLES), "content types, permissions and migrations stay"
