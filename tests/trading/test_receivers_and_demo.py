"""The feed drives trading: the `matching` tick consumer fills resting paper orders (also across its
restarts), a candle close runs the signal engine; the demo seed."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.utils import timezone

from config.celery import app as celery_app
from core.rls import system_context, tenant
from marketdata.events import candle_closed
from marketdata.models import Candle, Instrument
from marketdata.types import CandleBar, TickEvent
from tests.factories import UserFactory
from tests.ticks import publish, started
from tests.trading.conftest import make_bot, set_quote
from tests.trading.market_data import minute_bars
from trading.models import BlockedExecution, Bot, ExchangeConnection, Order, Signal
from trading.orders import services


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def _buy_limit(user, paper, price: str):
    portfolio, connection = paper
    with tenant(user.pk):
        return services.order_place(user=user, portfolio=portfolio, connection=connection, symbol="BTC/USDT",
                                    side="buy", type="limit", quantity=Decimal("0.1"), price=Decimal(price))


def _status(user, order) -> tuple[str, Decimal | None]:
    with tenant(user.pk):
        order.refresh_from_db()
    return order.status, order.average_price


def _tick(price: str, previous: str) -> TickEvent:
    return TickEvent(symbol="BTC/USDT", price=Decimal(price), previous_price=Decimal(previous), at=timezone.now())


def test_a_tick_through_a_resting_limit_fills_it(user_a, paper_a):
    matching = started("matching", consumer="test-1")
    order = _buy_limit(user_a, paper_a, "19500")
    publish([_tick("19480", "19600")])
    assert matching.run(max_entries=1, timeout=10) == 1
    assert _status(user_a, order) == ("filled", Decimal("19500"))


def test_a_resting_order_crossed_while_the_matching_consumer_was_down_fills_when_it_starts(user_a, paper_a):
    started("matching", consumer="host-100")  # ran before, then stopped: the group keeps its place
    order = _buy_limit(user_a, paper_a, "19500")
    publish([_tick("19480", "19600")], [_tick("19650", "19480")])  # through the limit and back up
    assert _status(user_a, order) == ("open", None)

    restarted = started("matching", consumer="host-101")  # the latest quote (20,000) crosses nothing
    assert _status(user_a, order) == ("open", None)
    assert restarted.run(max_entries=2, timeout=10) == 2
    assert _status(user_a, order) == ("filled", Decimal("19500"))


def test_on_start_the_matcher_catches_up_with_the_latest_live_price(user_a, paper_a):
    """For crossings the stream cannot replay (a matcher that never ran, a trimmed backlog)."""
    stale = _buy_limit(user_a, paper_a, "19500")
    set_quote("BTC/USDT", "19400", age_seconds=120)  # the feed went quiet: no trading on a stale price
    started("matching", consumer="host-100")
    assert _status(user_a, stale) == ("open", None)

    set_quote("BTC/USDT", "19400")
    started("matching", consumer="host-101")
    assert _status(user_a, stale) == ("filled", Decimal("19500"))


def test_a_candle_close_runs_the_signal_engine_and_the_gatekeeper(
    user_a, paper_a, eager_celery, django_capture_on_commit_callbacks
):
    make_bot(user_a, paper_a)
    instrument = Instrument.objects.get(symbol="BTC/USDT")
    start, end = datetime(2023, 3, 7, tzinfo=UTC), datetime(2023, 3, 10, 12, tzinfo=UTC)
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Candle.objects.bulk_create(
            Candle(instrument=instrument, open_time=b.open_time, open=b.open, high=b.high, low=b.low, close=b.close,
                   volume=b.volume)
            for b in minute_bars() if start <= b.open_time < end
        )
    last = Candle.objects.filter(instrument=instrument).order_by("-open_time").first()
    bar = CandleBar(open_time=last.open_time, open=last.open, high=last.high, low=last.low, close=last.close,
                    volume=last.volume)
    # Replayed market time is March 2023; staleness is measured from when the feed reported the close.
    with django_capture_on_commit_callbacks(execute=True):
        candle_closed.send(sender=None, symbol="BTC/USDT", candle=bar)
    signal = Signal.objects.get()
    assert (signal.action, signal.regime) == ("buy", "bearish")
    assert timezone.now() - signal.closed_at < timedelta(minutes=1)
    with tenant(user_a.pk):
        assert BlockedExecution.objects.count() == 1
        assert not Order.objects.exists()


def test_the_demo_seed_is_idempotent(instruments, btc_quote):
    trader = UserFactory(email="trader@nexus.demo")
    config = apps.get_app_config("trading")
    with system_context(reason="test: seed_demo"):
        apps.get_app_config("portfolios").seed_demo(trader=trader, stdout=io.StringIO())
        config.seed_demo(trader=trader, stdout=io.StringIO())
        config.seed_demo(trader=trader, stdout=io.StringIO())
    with tenant(trader.pk):
        assert list(ExchangeConnection.objects.values_list("venue", flat=True)) == ["paper"]
        bots = list(Bot.objects.values_list("name", "strategy"))
    assert bots and ("BTC DCA", "dca") in bots
