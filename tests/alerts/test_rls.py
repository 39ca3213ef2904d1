"""Row-level security on every alert and notification table: the database refuses other tenants' rows."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from alerts.choices import AlertKind
from alerts.services import alert_create, alert_fire
from core.notifications import notification_preference_set
from core.rls import system_context, tenant

TABLES = [
    "alerts_alert",
    "alerts_alertfiring",
    "core_notification",
    "core_notificationdelivery",
    "core_notificationpreference",
]


def _sql(query: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()[0] if cursor.description else cursor.rowcount


@pytest.fixture
def both_tenants(user_a, user_b, btc):
    from decimal import Decimal

    for user in (user_a, user_b):
        alert = alert_create(user=user, kind=AlertKind.PRICE_CROSS, symbol="BTC/USDT", threshold="100")
        assert (
            alert_fire(
                alert_id=alert.pk,
                user_id=user.pk,
                occurrence_key="t1",
                value=Decimal("101"),
                previous_value=Decimal("99"),
            ).status
            == "fired"
        )
        notification_preference_set(user=user, kind="alert.price", channel="email", enabled=False)


@pytest.mark.parametrize("table", TABLES)
def test_a_tenant_sees_changes_and_deletes_only_its_own_rows(both_tenants, user_a, user_b, table):
    with system_context(reason="test: both tenants have rows"):
        assert _sql(f"SELECT count(DISTINCT user_id) FROM {table}") == 2  # noqa: S608 - fixed table names
    with tenant(user_a.pk):
        assert _sql(f"SELECT count(*) FROM {table} WHERE user_id <> %s", [user_a.pk]) == 0  # noqa: S608
        assert _sql(f"SELECT count(*) FROM {table}") >= 1  # noqa: S608
        assert _sql(f"UPDATE {table} SET user_id = user_id WHERE user_id = %s", [user_b.pk]) == 0  # noqa: S608
        assert _sql(f"DELETE FROM {table} WHERE user_id = %s", [user_b.pk]) == 0  # noqa: S608
    assert _sql(f"SELECT count(*) FROM {table}") == 0  # noqa: S608 - no tenant, nothing visible


@pytest.mark.parametrize("table", TABLES)
def test_moving_a_row_to_another_tenant_is_refused(both_tenants, user_a, user_b, table):
    with tenant(user_a.pk), pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        _sql(f"UPDATE {table} SET user_id = %s WHERE user_id = %s", [user_b.pk, user_a.pk])  # noqa: S608


@pytest.mark.django_db(databases=["default", "owner"])
def test_every_table_here_is_forced_under_the_tenant_policy():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, count(p.polname) FROM pg_class c "
            "LEFT JOIN pg_policy p ON p.polrelid = c.oid WHERE c.relname = ANY(%s) GROUP BY 1, 2, 3",
            [TABLES],
        )
        assert sorted(cursor.fetchall()) == [(table, True, True, 1) for table in sorted(TABLES)]
