"""Seeded data for the companion's tests, question set and benchmark: a market and one trader's account.

The market (instruments, quotes, candles, a regime reading) is shared reference data written once; each
trader gets a portfolio built through the portfolio services (so positions, lots and cash follow as on
the dashboard), alerts, bots and orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from alerts.choices import AlertKind, AlertState
from core.rls import system_context, tenant
from marketdata.models import Candle, Quote
from portfolios.choices import TransactionKind
from portfolios.services import portfolio_create, transaction_record
from tests.factories import (
    AlertFactory,
    BotFactory,
    CandleFactory,
    InstrumentFactory,
    OrderFactory,
    QuoteFactory,
    RegimeReadingFactory,
)
from trading.choices import BotStatus, OrderStatus, OrderType, Regime

D = Decimal
PRICES = {"BTC/USDT": D("67412.35"), "ETH/USDT": D("3500.5"), "SOL/USDT": D("150.25")}
OPENS_24H = {"BTC/USDT": D("66000"), "ETH/USDT": D("3600"), "SOL/USDT": D("150.25")}
CANDLE_START = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class Seeded:
    user: object
    portfolio: object
    bots: dict
    alerts: dict


def market_seed() -> dict:
    """Instruments, fresh quotes, 48 hourly-spaced BTC candles and a BTC regime reading (idempotent)."""
    instruments = {symbol: InstrumentFactory(symbol=symbol) for symbol in PRICES}
    with system_context(reason="tests: the market feed's shared data"):
        have_quotes = set(Quote.objects.values_list("instrument__symbol", flat=True))
        have_candles = Candle.objects.filter(instrument=instruments["BTC/USDT"]).exists()
    for symbol, instrument in instruments.items():
        if symbol not in have_quotes:
            QuoteFactory(
                instrument=instrument,
                price=PRICES[symbol],
                bid=PRICES[symbol] - D("0.05"),
                ask=PRICES[symbol] + D("0.05"),
                open_24h=OPENS_24H[symbol],
                volume_24h=D("1234.5"),
                at=timezone.now(),
                updated_at=timezone.now(),
            )
    if not have_candles:
        # One one-minute candle per hour: the 1h aggregation has one bar per hour; closes rise 64000 -> 67525.
        for hour in range(48):
            close = D(64000) + D(75) * hour
            CandleFactory(
                instrument=instruments["BTC/USDT"],
                open_time=CANDLE_START + timedelta(hours=hour),
                open=close - D(25),
                close=close,
                high=close + D(100),
                low=close - D(125),
                volume=D("2"),
            )
        RegimeReadingFactory(
            instrument=instruments["BTC/USDT"],
            regime=Regime.BULLISH,
            sma_slope_pct=D("0.4231"),
            adx=D("31.27"),
        )
    return instruments


def trader_seed(user, *, instruments: dict | None = None) -> Seeded:
    """One trader: a USDT portfolio holding 0.4 BTC and 2 ETH, two alerts, two bots, two orders."""
    instruments = instruments or market_seed()
    btc, eth = instruments["BTC/USDT"], instruments["ETH/USDT"]
    when = timezone.now() - timedelta(days=3)
    with tenant(user.pk):  # the services run inside the user's tenant, as in a request
        portfolio = portfolio_create(user=user, name="Main", base_currency="USDT")
    steps = [
        (TransactionKind.DEPOSIT, None, "USDT", "50000", None),
        (TransactionKind.BUY, btc, None, "0.5", "30000"),
        (TransactionKind.BUY, eth, None, "2", "2000"),
        (TransactionKind.SELL, btc, None, "0.1", "60000"),
    ]
    for n, (kind, instrument, currency, quantity, price) in enumerate(steps):
        with tenant(user.pk):
            transaction_record(
                user=user,
                portfolio=portfolio,
                kind=kind,
                instrument=instrument,
                currency=currency,
                quantity=D(quantity),
                price=D(price) if price else None,
                executed_at=when + timedelta(minutes=n),
            )
    alerts = {
        "btc": AlertFactory(user=user, instrument=btc, kind=AlertKind.PRICE_ABOVE, threshold=D("80000")),
        "eth": AlertFactory(
            user=user, instrument=eth, kind=AlertKind.PRICE_BELOW, threshold=D("3000"), state=AlertState.ARMED
        ),
    }
    trend = BotFactory(user=user, name="BTC trend", instrument=btc, strategy="sma_cross")
    dca = BotFactory(
        user=user, name="ETH dca", instrument=eth, connection=trend.connection, portfolio=trend.portfolio,
        status=BotStatus.PAUSED,
    )  # fmt: skip
    OrderFactory(
        user=user, connection=trend.connection, portfolio=trend.portfolio, instrument=eth, type=OrderType.LIMIT,
        quantity=D("1"), price=D("3000"), status=OrderStatus.OPEN,
    )  # fmt: skip
    OrderFactory(
        user=user, connection=trend.connection, portfolio=trend.portfolio, instrument=btc, bot=trend,
        quantity=D("0.01"), status=OrderStatus.FILLED, filled_quantity=D("0.01"), average_price=D("67000"),
    )  # fmt: skip
    with tenant(user.pk):
        portfolio.refresh_from_db()
    return Seeded(user=user, portfolio=portfolio, bots={"trend": trend, "dca": dca}, alerts=alerts)
