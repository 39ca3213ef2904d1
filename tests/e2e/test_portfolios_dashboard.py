"""The dashboard is alive: a price tick changes the total value on the open page, without a reload.

The tick is published here the way the feed publishes it: the Quote row is updated and the batch is
appended to the tick stream. The `revaluation` tick consumer runs here (on a thread of its own), renders
the fragment and sends it through the Redis channel layer; the daphne subprocess forwards it to the
browser's WebSocket.
"""

from __future__ import annotations

import re
from decimal import Decimal
from uuid import uuid4

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from core.rls import system_context, tenant
from marketdata.models import Quote
from marketdata.services import instruments_seed
from marketdata.types import TickEvent
from portfolios.services import portfolio_create, transaction_record
from tests.e2e.conftest import log_in
from tests.factories import UserFactory
from tests.ticks import consume


def _publish(instrument, price: str) -> None:
    now = timezone.now()
    previous = Quote.objects.filter(instrument=instrument).values_list("price", flat=True).first()
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Quote.objects.update_or_create(
            instrument=instrument,
            defaults={"price": Decimal(price), "source": "test", "at": now, "updated_at": now},
        )
    tick = TickEvent(symbol=instrument.symbol, price=Decimal(price), previous_price=previous, at=now)
    assert consume("revaluation", [tick]) == 1


# Flush every table afterwards: the `default` alias flushes nothing (only `owner` may migrate, so Django
# lists no tables for it), and committed rows would leak into later tests.
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])


def test_the_total_value_follows_the_market_while_the_page_is_open(page):
    btc = {i.symbol: i for i in instruments_seed()}["BTC/USDT"]
    trader = UserFactory(email=f"live-{uuid4().hex[:8]}@example.com")
    with tenant(trader.pk):
        portfolio = portfolio_create(user=trader, name="Live", base_currency="USDT")
        transaction_record(
            user=trader,
            portfolio=portfolio,
            kind="deposit",
            currency="USDT",
            quantity=Decimal("1000"),
            executed_at=timezone.now(),
        )
        transaction_record(
            user=trader,
            portfolio=portfolio,
            kind="buy",
            instrument=btc,
            quantity=Decimal("0.5"),
            price=Decimal("20000"),
            executed_at=timezone.now(),
        )
    _publish(btc, "21000")

    page.add_init_script(
        "document.addEventListener('htmx:wsOpen', () => { document.documentElement.dataset.wsOpen = '1'; });"
    )
    log_in(page, trader.email)
    total = page.locator(f"#pf-{portfolio.pk}-total")
    expect(total).to_have_text("10,500.00")  # 0.5 x 21,000 + 0 cash (1,000 - 10,000 counts as added)
    btc_row = page.locator('tr[data-symbol="BTC/USDT"]')
    expect(btc_row.locator("[data-price]")).to_contain_text("21,000")
    expect(page.locator("html[data-ws-open]")).to_have_count(1)
    page.evaluate("() => { document.documentElement.dataset.loadMarker = 'same page'; }")

    _publish(btc, "23000")

    expect(total).to_have_text("11,500.00", timeout=15_000)
    expect(btc_row.locator("[data-price]")).to_contain_text("23,000")
    expect(btc_row).to_contain_text("+1,500.00")  # unrealized: 11,500 - 10,000 cost
    expect(page.locator("html[data-load-marker='same page']")).to_have_count(
        1
    )  # updated in place, not reloaded

    # A transaction landing is pushed the same way: the recent list and the total change.
    with tenant(trader.pk):
        transaction_record(
            user=trader,
            portfolio=portfolio,
            kind="deposit",
            currency="USDT",
            quantity=Decimal("250"),
            executed_at=timezone.now(),
        )
    expect(total).to_have_text("11,750.00", timeout=15_000)
    expect(page.locator(f"#pf-{portfolio.pk}-recent")).to_contain_text("Deposit")


def test_adding_a_transaction_shows_errors_in_place_and_records_it(page):
    instruments_seed()
    trader = UserFactory(email=f"form-{uuid4().hex[:8]}@example.com")
    with tenant(trader.pk):
        portfolio = portfolio_create(user=trader, name="Form", base_currency="USDT")
    log_in(page, trader.email)

    form = page.locator("#transaction-form")
    form.get_by_label("Type").select_option("sell")
    form.get_by_label("Instrument").fill("BTC/USDT")
    form.get_by_label("Quantity").fill("1")
    form.get_by_label("Price", exact=True).fill("20000")
    form.get_by_role("button", name="Add transaction").click()
    expect(page.locator("#id_quantity_error")).to_have_text(re.compile(r"^You hold 0 BTC in BTC/USDT"))
    expect(page.locator("#transaction-form").get_by_label("Quantity")).to_have_value("1")

    page.locator("#transaction-form").get_by_label("Type").select_option("buy")
    page.locator("#transaction-form").get_by_role("button", name="Add transaction").click()
    expect(page.locator("#transaction-form")).to_contain_text("Recorded:")
    expect(page.locator(f"#pf-{portfolio.pk}-positions")).to_contain_text("BTC/USDT")
    expect(page.locator(f"#pf-{portfolio.pk}-recent")).to_contain_text("Buy")
