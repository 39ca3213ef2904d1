"""The feed's signals drive trading (paper fills on ticks, signals on candle closes); the demo seed."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.utils import timezone

from config.celery import app as celery_app
from core.rls import system_context, tenant
from marketdata.events import candle_closed, ticks_published
from marketdata.models import Candle, Instrument
from marketdata.types import CandleBar, TickEvent
from tests.factories import UserFactory
from tests.trading.conftest import make_bot
from tests.trading.market_data import minute_bars
from trading.models import BlockedExecution, Bot, ExchangeConnection, Order, Signal
from trading.orders import services


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_a_tick_through_a_resting_limit_fills_it(user_a, paper_a, eager_celery):
    portfolio, connection = paper_a
    with tenant(user_a.pk):
        order = services.order_place(user=user_a, portfolio=portfolio, connection=connection, symbol="BTC/USDT",
                                     side="buy", type="limit", quantity=Decimal("0.1"), price=Decimal("19500"))
    tick = TickEvent(symbol="BTC/USDT", price=Decimal("19480"), previous_price=Decimal("19600"), at=timezone.now())
    ticks_published.send(sender=None, ticks=[tick])
    with tenant(user_a.pk):
        order.refresh_from_db()
    assert (order.status, order.average_price) == ("filled", Decimal("19500"))


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
