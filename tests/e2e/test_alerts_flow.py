"""Browser: a trader sets a price alert on /alerts, the price crosses it, and the toast arrives live."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from core.rls import system_context
from marketdata.models import Instrument, Quote
from marketdata.types import TickEvent
from tests.e2e.conftest import log_in
from tests.factories import UserFactory
from tests.ticks import consume

# Flushing the owner alias too empties the tables afterwards (the runtime alias's flush truncates nothing).
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])


def _wait_for_websocket(page, timeout: float = 10.0) -> None:
    # Polled from Python: wait_for_function evaluates a string in the page, which the CSP forbids.
    deadline = time.monotonic() + timeout
    while not page.evaluate("() => window.nexusWsOpen === true"):
        assert time.monotonic() < deadline, "the page's WebSocket did not open"
        page.wait_for_timeout(50)


def test_price_alert_created_on_the_page_arrives_as_a_toast_when_the_price_crosses(page):
    user = UserFactory(email="alerts-e2e@example.com")
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        btc = Instrument.objects.create(symbol="BTC/USDT", base="BTC", quote="USDT", price_precision=2)
    now = timezone.now()
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Quote.objects.create(instrument=btc, price=Decimal("23140.00"), source="replay", at=now, updated_at=now)
    page.add_init_script(
        "document.addEventListener('htmx:wsOpen', function () { window.nexusWsOpen = true; });"
    )

    log_in(page, user.email)
    page.get_by_role("navigation", name="Primary").get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    page.get_by_label("Alert when").select_option("price_above")
    page.get_by_label("Market").fill("BTC/USDT")
    page.get_by_label("Level").fill("23150")
    page.get_by_label("Note").fill("breakout")
    page.get_by_role("button", name="Create alert").click()
    expect(page.get_by_text("Alert created: BTC/USDT rises above 23,150.00.")).to_be_visible()
    expect(page.locator("#alert-rows")).to_contain_text("Armed")

    page.goto("/dashboard/")
    _wait_for_websocket(page)
    crossing = TickEvent(
        symbol="BTC/USDT", price=Decimal("23162.50"), previous_price=Decimal("23140.00"), at=timezone.now()
    )
    assert consume("alerts", [crossing]) == 1
    toast = page.locator("#toasts .toast")
    expect(toast).to_contain_text(
        "BTC/USDT rose above 23,150.00 (now 23,162.50). Note: breakout", timeout=5000
    )
    expect(page.locator("#notification-unread")).to_have_text("1")

    page.get_by_role("link", name="Notifications").click()
    expect(page.get_by_text("in_app: sent")).to_be_visible()
    page.goto("/alerts/")
    expect(page.locator("#alert-rows")).to_contain_text("Triggered")


def test_bad_alert_input_shows_the_error_next_to_the_field(page):
    user = UserFactory(email="alerts-e2e-bad@example.com")
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Instrument.objects.create(symbol="BTC/USDT", base="BTC", quote="USDT")
    log_in(page, user.email)
    page.goto("/alerts/?symbol=BTC-USDT")
    expect(page.get_by_label("Market")).to_have_value("BTC/USDT")
    page.get_by_label("Level").fill("-5")
    page.get_by_role("button", name="Create alert").click()
    expect(page.locator("#id_threshold_error")).to_have_text("The price must be greater than zero.")
    page.get_by_label("Market").fill("NOPE/USDT")
    page.get_by_label("Level").fill("5")
    page.get_by_role("button", name="Create alert").click()
    expect(page.locator("#id_symbol_error")).to_contain_text("Unknown instrument 'NOPE/USDT'")
