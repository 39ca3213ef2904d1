"""Demo data for `manage.py seed_demo`: a portfolio bought at March 2023 prices. Idempotent.

BTC prices are one-minute closes from the recording the market feed replays (data/market), ETH's is
its 1 March 2023 price (the feed's reference price for ETH/USDT). The dashboard then moves with the
replayed market. Fees are 0.1 % in USDT, as on Binance without BNB.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from marketdata.selectors import instrument_get
from portfolios.choices import TransactionKind, TransactionSource
from portfolios.models import Portfolio
from portfolios.services import backfill_after_commit, portfolio_create, transaction_record

DEMO_PORTFOLIO = "Main"
FEE_RATE = Decimal("0.001")
# (external id, kind, symbol or currency, quantity, price, time UTC)
DEMO_TRANSACTIONS = [
    ("demo:deposit", TransactionKind.DEPOSIT, "USDT", "50000", None, datetime(2023, 3, 1, 0, 0, tzinfo=UTC)),
    (
        "demo:btc-1",
        TransactionKind.BUY,
        "BTC/USDT",
        "0.8",
        "23168.89",
        datetime(2023, 3, 1, 0, 5, tzinfo=UTC),
    ),
    ("demo:eth-1", TransactionKind.BUY, "ETH/USDT", "6", "1605.20", datetime(2023, 3, 1, 0, 10, tzinfo=UTC)),
    (
        "demo:btc-2",
        TransactionKind.BUY,
        "BTC/USDT",
        "0.5",
        "20145.78",
        datetime(2023, 3, 10, 14, 0, tzinfo=UTC),
    ),
    (
        "demo:btc-3",
        TransactionKind.SELL,
        "BTC/USDT",
        "0.3",
        "25828.54",
        datetime(2023, 3, 14, 15, 0, tzinfo=UTC),
    ),
]


def portfolios_demo_seed(*, trader, stdout) -> Portfolio:
    portfolio = Portfolio.objects.filter(user=trader, name=DEMO_PORTFOLIO).first()
    if portfolio is None:
        portfolio = portfolio_create(user=trader, name=DEMO_PORTFOLIO, base_currency="USDT")
    for external_id, kind, what, quantity, price, executed_at in DEMO_TRANSACTIONS:
        quantity = Decimal(quantity)
        instrument = instrument_get(symbol=what) if price is not None else None
        fee = (quantity * Decimal(price) * FEE_RATE) if price is not None else Decimal(0)
        transaction_record(
            user=trader,
            portfolio=portfolio,
            kind=kind,
            instrument=instrument,
            currency=None if instrument else what,
            quantity=quantity,
            price=Decimal(price) if price is not None else None,
            fee=fee,
            fee_currency="USDT" if fee else "",
            executed_at=executed_at,
            external_id=external_id,
            note="Demo data",
            source=TransactionSource.DEMO,
        )
    # The market feed stores the last days' candles when it starts; the past curve is drawn from them.
    backfill_after_commit(portfolio, countdown=20)
    stdout.write(
        f"Portfolios: '{portfolio.name}' for {trader.email}, BTC and ETH bought in March 2023, plus cash"
    )
    return portfolio
