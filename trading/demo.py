"""Demo data for `manage.py seed_demo`: a paper connection, a funded paper portfolio and two bots. Idempotent."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from core.errors import DomainError
from core.rls import tenant
from marketdata.selectors import recorded_candles
from portfolios.choices import PortfolioKind, TransactionKind
from portfolios.services import portfolio_create, transaction_record
from trading import ledger
from trading.bots.services import bot_create
from trading.choices import Timeframe, Venue
from trading.connections.services import connection_create
from trading.models import Bot, ExchangeConnection, ReplayRun
from trading.tracker.services import replay_create, replay_execute

DEMO_PORTFOLIO = "Paper trading"
DEMO_REPLAY_BOT = "BTC trend"
DEMO_CASH = Decimal("10000")
DEMO_BOTS = [
    {"name": "BTC DCA", "strategy": "dca", "params": {"every": 5}, "allocation": "100", "max_position": "0.2",
     "daily_loss_limit": "100"},
    {"name": "BTC trend", "strategy": "sma_crossover", "params": {"fast": 9, "slow": 21}, "allocation": "250",
     "max_position": "0.1", "daily_loss_limit": "150"},
]


def trading_demo_seed(*, trader, stdout) -> None:
    connection = ExchangeConnection.objects.filter(user=trader, venue=Venue.PAPER).first()
    if connection is None:
        connection = connection_create(user=trader, label="Paper exchange", venue=Venue.PAPER)
    portfolio = ledger.portfolio_list(user=trader).filter(kind=PortfolioKind.PAPER).first()
    if portfolio is None:
        portfolio = portfolio_create(user=trader, name=DEMO_PORTFOLIO, base_currency="USDT", kind=PortfolioKind.PAPER)
    if ledger.cash(portfolio=portfolio, currency="USDT") <= 0:
        transaction_record(
            user=trader, portfolio=portfolio, kind=TransactionKind.DEPOSIT, quantity=DEMO_CASH, currency="USDT",
            executed_at=timezone.now(), external_id="demo:paper-deposit", note="Demo paper money",
        )
    for spec in DEMO_BOTS:
        if Bot.objects.filter(user=trader, name=spec["name"]).exists():
            continue
        try:
            with transaction.atomic():
                bot_create(
                    user=trader, portfolio=portfolio, connection=connection, symbol="BTC/USDT",
                    timeframe=Timeframe.M1, **spec,
                )
        except DomainError as error:  # the demo trader's plan may allow fewer bots
            stdout.write(f"Trading: bot {spec['name']!r} not created: {error}")
    bots = Bot.objects.filter(user=trader).count()
    stdout.write(f"Trading: paper connection, '{portfolio.name}' portfolio and {bots} bot(s) for {trader.email}")
    _demo_replay(trader=trader, stdout=stdout)


def _demo_replay(*, trader, stdout) -> None:
    """One simulation for the strategy tracker: the trend bot's settings over the recorded March 2023 candles
    (about five seconds), linked to the bot when the trader's plan allowed it; the tracker's replay page has a
    button for the others."""
    spec = next(s for s in DEMO_BOTS if s["name"] == DEMO_REPLAY_BOT)
    name = f"{DEMO_REPLAY_BOT} over the recording"
    if ReplayRun.objects.filter(user=trader, name=name).exists():
        return
    if not recorded_candles(symbol="BTC/USDT"):
        stdout.write("Trading: no recorded candles, so no demo simulation")
        return
    with tenant(trader.pk):
        run = replay_create(
            user=trader, name=name, symbol="BTC/USDT", strategy=spec["strategy"], params=spec["params"],
            timeframe=Timeframe.M1, allocation=spec["allocation"], max_position=spec["max_position"],
            daily_loss_limit=spec["daily_loss_limit"], bot=Bot.objects.filter(user=trader, name=DEMO_REPLAY_BOT).first(),
            enqueue=False,
        )
    status = replay_execute(run_id=run.pk, user_id=trader.pk)
    stdout.write(f"Trading: simulation {run.name!r} {status} (strategy tracker)")
