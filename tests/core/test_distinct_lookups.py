"""The cross-tenant "which ones" lookups (run per tick batch and per fill) ask PostgreSQL for one row per
distinct value: a model's default ordering would otherwise join the DISTINCT and bring back a row per
order, alert or rule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from alerts.choices import AlertKind
from alerts.services import event_alert_owners
from automation.choices import TriggerKind
from automation.services import rule_owners
from core.rls import system_context
from tests.factories import AlertFactory, InstrumentFactory, OrderFactory, RuleFactory
from trading.choices import OrderStatus, OrderType
from trading.receivers import _symbols_with_resting_orders

pytestmark = pytest.mark.django_db


def _rows_fetched(call) -> tuple[object, int]:
    """`call()`'s result and how many rows its one DISTINCT query brings back from PostgreSQL."""
    system = connections["system"]
    with CaptureQueriesContext(system) as captured:
        result = call()
    distinct = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT DISTINCT")]
    assert len(distinct) == 1, distinct
    with system_context(reason="tests: re-run the captured query"), system.cursor() as cursor:
        cursor.execute(distinct[0])
        return result, len(cursor.fetchall())


def test_one_row_per_symbol_owner_and_rule_owner(user_a, user_b):
    btc = InstrumentFactory(symbol="BTC/USDT")
    for price in ("15000", "15100", "15200"):
        OrderFactory(user=user_a, instrument=btc, type=OrderType.LIMIT, price=Decimal(price), status=OrderStatus.OPEN)
    for _ in range(3):
        AlertFactory(user=user_a, kind=AlertKind.ORDER_FILLED, instrument=None, threshold=None)
        RuleFactory(user=user_a, trigger_kind=TriggerKind.ORDER_FILLED, trigger={})

    symbols, rows = _rows_fetched(lambda: _symbols_with_resting_orders())
    assert (symbols, rows) == ({"BTC/USDT"}, 1)
    owners, rows = _rows_fetched(
        lambda: event_alert_owners(kind=AlertKind.ORDER_FILLED, user_ids={user_a.pk, user_b.pk})
    )
    assert (owners, rows) == ({user_a.pk}, 1)
    owners, rows = _rows_fetched(lambda: rule_owners(kind=TriggerKind.ORDER_FILLED, user_ids={user_a.pk, user_b.pk}))
    assert (owners, rows) == ({user_a.pk}, 1)
