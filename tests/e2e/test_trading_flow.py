"""Browser: a trader places a paper limit order, sees it open, sees a fill arrive live, and cancels another."""

from __future__ import annotations

import re
import threading
from decimal import Decimal

import pytest
from django.db import connections
from playwright.sync_api import expect

from core.rls import tenant
from marketdata.services import instruments_seed
from tests.e2e.conftest import log_in
from tests.factories import UserFactory
from tests.trading.conftest import paper_setup, set_quote
from trading.models import Order
from trading.orders import services

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])


def _off_loop(function, *args, **kwargs):
    """Run server-side code in a thread of its own: Playwright's event loop owns this one, and the code
    sends to the channel layer (async_to_sync) after committing."""
    result = {}

    def run():
        try:
            result["value"] = function(*args, **kwargs)
        except BaseException as error:  # re-raised in the test's thread
            result["error"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def _setup():
    user = UserFactory(email="trading-e2e@example.com")
    instruments_seed()
    set_quote("BTC/USDT", "20000", bid="19999", ask="20001")
    paper_setup(user)
    return user


def _wait_for_websocket(page) -> None:
    expect(page.locator("html")).to_have_attribute("data-trading-live", "open")  # static/js/trading.js


def test_place_a_limit_order_see_it_fill_live_and_cancel_another(page):
    user = _off_loop(_setup)
    log_in(page, user.email)

    page.goto("/trading/")
    expect(page.get_by_role("heading", name="Order ticket")).to_be_visible()
    page.get_by_label("Pair").select_option("BTC/USDT")
    page.get_by_label("Order type").select_option("limit")
    page.get_by_label("Quantity").fill("0.1")
    expect(page.get_by_label("Trigger price")).to_be_hidden()
    page.get_by_label("Limit price").fill("19000.123")
    expect(page.locator("#ticket-check")).to_contain_text("at most 2 decimal places")  # checked before submitting
    page.get_by_label("Limit price").fill("19000")
    page.get_by_label("Quantity").fill("5")
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#id_quantity_error")).to_contain_text("Insufficient balance")  # the answer, in place
    page.get_by_label("Quantity").fill("0.1")
    _off_loop(set_quote, "BTC/USDT", "20000", bid="19999", ask="20001")  # the feed keeps it fresh in production
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("status")).to_contain_text("Order placed: Buy 0.1 BTC/USDT — open.")

    # The open-orders table is refreshed over the WebSocket, not by reloading the page.
    _wait_for_websocket(page)
    rows = page.locator("#open-orders tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Open")

    with tenant(user.pk):
        first = Order.objects.get()
    page.get_by_label("Limit price").fill("18000")
    page.get_by_label("Quantity").fill("0.05")
    page.get_by_role("button", name="Place order").click()
    expect(rows).to_have_count(2)

    # The market trades down through 19,000: the paper exchange fills the first order, and its row leaves
    # the open orders on the open page.
    _off_loop(services.order_match_resting, order_id=str(first.pk), user_id=user.pk, price=Decimal("18990"))
    expect(rows).to_have_count(1)
    expect(page.locator(f"#order-{first.pk}")).to_have_count(0)

    page.get_by_role("button", name=re.compile("Cancel order")).click()
    expect(page.locator("#open-orders")).to_contain_text("No open orders.")
    with tenant(user.pk):
        assert sorted(Order.objects.values_list("status", flat=True)) == ["cancelled", "filled"]

    page.goto("/trading/orders/history/")
    expect(page.locator("#order-history tbody tr")).to_have_count(2)
