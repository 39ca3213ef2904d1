"""Pages a trader sees, whatever page is open and whatever the screen: no console errors from pushes meant
for other pages, and no sideways scrolling on a phone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from io import StringIO
from uuid import uuid4

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from playwright.sync_api import expect

from accounts.management.commands.seed_demo import DEMO_TRADER
from accounts.models import User
from core.rls import system_context, tenant
from marketdata.models import Instrument
from portfolios.choices import PortfolioKind
from portfolios.models import Portfolio
from portfolios.services import portfolio_create, transaction_record, watchlist_add, watchlist_create
from tests.e2e.conftest import log_in
from tests.factories import UserFactory
from tests.trading.conftest import set_quote
from trading.choices import Venue
from trading.models import ExchangeConnection
from trading.orders.services import order_place

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])

# Counts the WebSocket messages the page has handled, so a test waits for a push instead of sleeping.
COUNT_MESSAGES = (
    "document.addEventListener('htmx:wsOpen', () => { document.documentElement.dataset.wsOpen = '1'; });"
    "document.addEventListener('htmx:wsAfterMessage', () => {"
    " const root = document.documentElement; root.dataset.wsMessages = String(Number(root.dataset.wsMessages || 0) + 1);"
    "});"
)


def _console_problems(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


@pytest.mark.parametrize("path", ["/alerts/", "/trading/", "/settings/", "/assistant/"])
def test_portfolio_pushes_reaching_another_page_log_no_console_errors(page, path):
    trader = UserFactory(email=f"away-{uuid4().hex[:8]}@example.com")
    with tenant(trader.pk):
        portfolio = portfolio_create(user=trader, name="Away", base_currency="USDT")
    page.add_init_script(COUNT_MESSAGES)
    problems = _console_problems(page)
    log_in(page, trader.email)  # the dashboard marks the trader as watching: pushes follow them
    page.goto(path)
    expect(page.locator("html[data-ws-open]")).to_have_count(1)
    assert page.locator(f"#pf-{portfolio.pk}-stats").count() == 0

    with tenant(trader.pk):
        transaction_record(
            user=trader,
            portfolio=portfolio,
            kind="deposit",
            currency="USDT",
            quantity=Decimal("100"),
            executed_at=timezone.now(),
        )
    # The push (stats, positions, allocation, live point, recent) arrived and was handled on this page.
    expect(page.locator("html[data-ws-messages]")).to_have_count(1, timeout=15_000)
    assert not problems, f"console errors on {path} while a portfolio push arrived: {problems}"


PHONE_PAGES = [
    "/dashboard/",
    "/trading/",
    "/trading/bots/",
    "/trading/tracker/",
    "/trading/tracker/replays/",
    "/alerts/",
    "/automation/",
    "/automation/new/",
    "/portfolios/",
    "/watchlists/",
    "/markets",
    "/assistant/",
]


def _off_the_browser_thread(work):
    """Run `work` on a thread of its own: Playwright's loop runs in this one, and the services push to
    the user's WebSocket through async_to_sync, which refuses to run under a loop."""

    def run():
        try:
            return work()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def _seed_demo_trader():
    call_command("seed_demo", stdout=StringIO())
    set_quote("BTC/USDT", "20000", bid="19999", ask="20001")
    with system_context(reason="tests: find the demo trader"):
        trader = User.objects.get(email=DEMO_TRADER["email"])
    with tenant(trader.pk):
        watchlist = watchlist_create(user=trader, name="Majors")
        watchlist_add(user=trader, watchlist=watchlist, instrument=Instrument.objects.get(symbol="ETH/USDT"))
        order_place(
            user=trader,
            portfolio=Portfolio.objects.get(user=trader, kind=PortfolioKind.PAPER),
            connection=ExchangeConnection.objects.get(user=trader, venue=Venue.PAPER),
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            quantity=Decimal("0.01"),
            price=Decimal("15000"),
        )
    return trader


@pytest.fixture
def demo_trader(transactional_db):
    """The trader `manage.py seed_demo` creates, with what a trader soon has: a watchlist with an
    instrument and an order resting on the paper exchange."""
    return _off_the_browser_thread(_seed_demo_trader)


def test_at_phone_width_no_page_scrolls_sideways(page, demo_trader):
    page.set_viewport_size({"width": 375, "height": 812})
    log_in(page, DEMO_TRADER["email"], DEMO_TRADER["password"])
    widths = {}
    for path in PHONE_PAGES:
        page.goto(path)
        expect(page.locator("main h1").first).to_be_visible()
        widths[path] = page.evaluate("document.documentElement.scrollWidth")
        if path == "/trading/":  # the wide open-orders table is there, scrolled inside its card
            expect(page.locator("#open-orders table")).to_be_visible()
    too_wide = {path: width for path, width in widths.items() if width > 375}
    assert not too_wide, f"pages wider than the 375 px screen: {too_wide}"


def test_the_dashboard_performance_table_fits_its_card_at_1280_px(page, demo_trader):
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, DEMO_TRADER["email"], DEMO_TRADER["password"])
    volatility = page.get_by_role("columnheader", name="Volatility")
    expect(volatility).to_be_visible()
    fits = page.evaluate(
        """() => Array.from(document.querySelectorAll('.dash-grid .table-wrap')).map(wrap => ({
            table: wrap.querySelector('table').className.replace('cards', '').trim(),
            overflow: wrap.scrollWidth - wrap.clientWidth,
        }))"""
    )
    assert {row["table"] for row in fits} >= {"performance", "recent"}
    assert all(row["overflow"] <= 0 for row in fits), f"tables cut off inside their card: {fits}"
    card = page.locator("article.card", has=page.locator("table.performance")).bounding_box()
    head = volatility.bounding_box()
    assert head["x"] + head["width"] <= card["x"] + card["width"]
