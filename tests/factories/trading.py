"""Trading rows as stored. Connections built here hold no keys (paper by default); orders and fills are
raw rows that neither the portfolio ledger nor the bots' books have seen: place orders through
`trading.services` where those must follow."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from portfolios.choices import PortfolioKind
from tests.factories.base import ReferenceFactory, TenantFactory, owner
from tests.factories.marketdata import InstrumentFactory
from tests.factories.portfolios import PortfolioFactory
from trading.choices import OrderSide, OrderType, Regime, SignalAction, SignalStatus, Timeframe, Venue
from trading.models import (
    BlockedExecution,
    Bot,
    ExchangeConnection,
    ExecutionPlan,
    Fill,
    Order,
    RegimeReading,
    ReplayFill,
    ReplayRun,
    Signal,
)


class ExchangeConnectionFactory(TenantFactory):
    class Meta:
        model = ExchangeConnection

    label = factory.Sequence(lambda n: f"Paper {n}")
    venue = Venue.PAPER


class BotFactory(TenantFactory):
    """A running DCA bot buying 100 USDT of BTC every candle, on a paper connection and portfolio."""

    class Meta:
        model = Bot

    name = factory.Sequence(lambda n: f"Bot {n}")
    portfolio = factory.SubFactory(PortfolioFactory, user=owner(), kind=PortfolioKind.PAPER)
    connection = factory.SubFactory(ExchangeConnectionFactory, user=owner())
    instrument = factory.SubFactory(InstrumentFactory)
    strategy = "dca"
    params = factory.LazyFunction(lambda: {"every": 1})
    params_key = "every=1"
    timeframe = Timeframe.M1
    allocation = Decimal("100")
    max_position = Decimal("1")
    daily_loss_limit = Decimal("50")


class RegimeReadingFactory(ReferenceFactory):
    class Meta:
        model = RegimeReading

    instrument = factory.SubFactory(InstrumentFactory)
    timeframe = Timeframe.H1
    as_of = factory.LazyFunction(lambda: timezone.now().replace(minute=0, second=0, microsecond=0))
    regime = Regime.BULLISH
    sma_slope_pct = Decimal("1.5")
    adx = Decimal("25")


class SignalFactory(ReferenceFactory):
    """A fresh DCA buy decision on the last one-minute candle of BTC/USDT, planned."""

    class Meta:
        model = Signal

    instrument = factory.SubFactory(InstrumentFactory)
    strategy = "dca"
    params = factory.LazyFunction(lambda: {"every": 1})
    params_key = "every=1"
    timeframe = Timeframe.M1
    closed_at = factory.LazyFunction(lambda: timezone.now() - timedelta(seconds=5))
    candle_open_time = factory.LazyAttribute(lambda o: o.closed_at - timedelta(minutes=1))
    action = SignalAction.BUY
    price = Decimal("20000")
    regime = Regime.BULLISH
    reason = "test signal"
    status = SignalStatus.PLANNED


class ExecutionPlanFactory(TenantFactory):
    class Meta:
        model = ExecutionPlan

    bot = factory.SubFactory(BotFactory, user=owner())
    signal = factory.SubFactory(SignalFactory, instrument=factory.SelfAttribute("..bot.instrument"))
    side = OrderSide.BUY
    quantity = Decimal("0.005")
    reference_price = factory.SelfAttribute("signal.price")


class BlockedExecutionFactory(TenantFactory):
    class Meta:
        model = BlockedExecution

    bot = factory.SubFactory(BotFactory, user=owner())
    signal = factory.SubFactory(
        SignalFactory, instrument=factory.SelfAttribute("..bot.instrument"), regime=Regime.BEARISH
    )
    side = OrderSide.BUY
    regime = factory.SelfAttribute("signal.regime")
    reason = "Buys are blocked while the market is bearish."


class OrderFactory(TenantFactory):
    """A new market buy of 0.01 BTC on a paper connection."""

    class Meta:
        model = Order

    connection = factory.SubFactory(ExchangeConnectionFactory, user=owner())
    portfolio = factory.SubFactory(PortfolioFactory, user=owner(), kind=PortfolioKind.PAPER)
    instrument = factory.SubFactory(InstrumentFactory)
    side = OrderSide.BUY
    type = OrderType.MARKET
    quantity = Decimal("0.01")


class FillFactory(TenantFactory):
    class Meta:
        model = Fill

    order = factory.SubFactory(OrderFactory, user=owner())
    fill_id = factory.Sequence(lambda n: f"fill-{n}")
    quantity = factory.SelfAttribute("order.quantity")
    price = Decimal("20000")
    fee_currency = factory.SelfAttribute("order.instrument.quote")
    executed_at = factory.LazyFunction(timezone.now)


class ReplayRunFactory(TenantFactory):
    """A finished simulation of SMA 9/21 on BTC/USDT (no fills: add ReplayFillFactory rows, or run
    `trading.tracker.services.replay_execute` on a queued one)."""

    class Meta:
        model = ReplayRun

    name = factory.Sequence(lambda n: f"Replay {n}")
    instrument = factory.SubFactory(InstrumentFactory)
    strategy = "sma_crossover"
    params = factory.LazyFunction(lambda: {"fast": 9, "slow": 21})
    params_key = "fast=9,slow=21"
    timeframe = Timeframe.M1
    allocation = Decimal("250")
    max_position = Decimal("0.1")
    daily_loss_limit = Decimal("150")
    fee_rate = Decimal("0.001")
    slippage_rate = Decimal("0.0005")
    status = "done"


class ReplayFillFactory(TenantFactory):
    class Meta:
        model = ReplayFill

    run = factory.SubFactory(ReplayRunFactory, user=owner())
    side = OrderSide.BUY
    quantity = Decimal("0.01")
    price = Decimal("20000")
    fee = Decimal("0.2")
    executed_at = factory.LazyFunction(timezone.now)
    regime = Regime.BULLISH
    reason = "SMA9 crossed above SMA21"
