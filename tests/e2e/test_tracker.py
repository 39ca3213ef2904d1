"""Browser: the strategy tracker on a phone-sized screen (no sideways scrolling, tables as cards, the equity
chart with its text version), and a replay started from its page whose progress updates until it is done."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from core.rls import tenant
from marketdata.models import Instrument
from marketdata.services import instruments_seed
from tests.e2e.conftest import log_in
from tests.e2e.test_trading_flow import _off_loop
from tests.factories import (
    BlockedExecutionFactory,
    BotFactory,
    ReplayFillFactory,
    ReplayRunFactory,
    SignalFactory,
    UserFactory,
)
from trading.models import Bot, ReplayRun
from trading.tracker.services import replay_execute

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])


def _setup():
    user = UserFactory(email="tracker-e2e@example.com")
    instruments_seed()
    btc = Instrument.objects.get(symbol="BTC/USDT")
    run = ReplayRunFactory(
        user=user, name="Trend over March", instrument=btc, mark_price=Decimal("22500"),
        data_from=datetime(2023, 3, 1, tzinfo=UTC), data_to=datetime(2023, 3, 3, 23, 59, tzinfo=UTC),
        daily_closes={"2023-03-01": "20500", "2023-03-02": "21200", "2023-03-03": "22500"},
        candles_total=4320, candles_done=4320,
    )
    start = datetime(2023, 3, 1, 10, tzinfo=UTC)
    for hours, side, price in ((0, "buy", "20000"), (24, "sell", "21000"), (30, "buy", "21100"),
                               (40, "sell", "20900"), (50, "buy", "22000")):
        ReplayFillFactory(user=user, run=run, side=side, price=Decimal(price), quantity=Decimal("0.01"),
                          fee=Decimal(price) * Decimal("0.00001"), executed_at=start + timedelta(hours=hours))
    other = ReplayRunFactory(user=user, name="A second simulation with a longer name than most", instrument=btc)
    ReplayFillFactory(user=user, run=other, executed_at=start)
    bot = BotFactory(user=user, instrument=btc, name="DCA bot with a long name that has to wrap on a phone")
    BlockedExecutionFactory(user=user, bot=bot, signal=SignalFactory(instrument=btc, regime="bearish"))
    return user, run, other


def _run_other_than(user, *runs):
    with tenant(user.pk):
        return ReplayRun.objects.exclude(pk__in=[r.pk for r in runs]).get()


def _bot_id(user):
    with tenant(user.pk):
        return Bot.objects.get().pk


def _no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, page.url


def test_the_tracker_on_a_phone_and_a_replay_started_from_its_page(page):
    user, run, other = _off_loop(_setup)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, user.email)

    page.goto("/trading/tracker/")
    # The main navigation's entry (folded away on a phone) is the current page.
    expect(page.locator("a", has_text=re.compile(r"^Tracker$"))).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", name="Strategy tracker")).to_be_visible()
    row = page.locator("table.tracker-table tbody tr").filter(has_text="Trend over March")
    expect(row.locator(".badge.simulation")).to_have_text("Simulation")
    expect(row.locator("td[data-label='Trades']")).to_have_text("2")
    _no_sideways_scroll(page)

    row.get_by_role("link", name="Simulation: Trend over March").click()
    expect(page.get_by_role("heading", name="Simulation: Trend over March", level=1)).to_be_visible()
    expect(page.get_by_role("note").first).to_contain_text("Simulation: what the strategy would have done")
    expect(page.get_by_role("img", name=re.compile(r"P&L at each daily close"))).to_be_visible()
    page.get_by_text("Equity curve as a table").click()
    expect(page.get_by_role("table", name="P&L and equity at each daily close").locator("tbody tr")).to_have_count(3)
    expect(page.locator(".journal-table tbody tr")).to_have_count(3)  # two round trips and the open one
    _no_sideways_scroll(page)

    for path in ("/trading/tracker/gate/", f"/trading/tracker/compare/?s=replay:{run.pk}&s=replay:{other.pk}",
                 "/trading/tracker/replays/", f"/trading/tracker/bot/{_off_loop(_bot_id, user)}/"):
        page.goto(path)
        expect(page.locator("main h1").first).to_be_visible()
        _no_sideways_scroll(page)
    page.goto("/trading/tracker/gate/")
    expect(page.get_by_text("DCA bot with a long name that has to wrap on a phone").first).to_be_visible()

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/trading/tracker/replays/")
    page.get_by_label("Name", exact=True).fill("DCA over the recording")
    page.get_by_label("DCA: buy every N candles").fill("5")
    page.get_by_label("Strategy", exact=True).select_option("dca")
    page.get_by_role("button", name="Run the simulation").click()
    expect(page).to_have_url(re.compile(r"/trading/tracker/replays/\d+/$"))
    status = page.locator("[data-replay-status]")
    expect(status).to_have_text("Queued")
    new_run = _off_loop(_run_other_than, user, run, other)
    assert _off_loop(lambda: replay_execute(run_id=new_run.pk, user_id=user.pk)) == "done"
    expect(status).to_have_text("Done", timeout=15000)
    page.get_by_role("link", name="See the simulated journal and statistics").click()
    expect(page.get_by_role("heading", name="Simulation: DCA over the recording", level=1)).to_be_visible()
    assert _off_loop(_run_other_than, user, run, other).decisions > 0
    assert not errors, errors
