"""The replay makes the decisions the live bot makes: the live signal engine and planner, driven minute by minute
over stored March 2023 candles, against the replay over the same candles held in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.rls import system_context, tenant
from marketdata.selectors import candle_list
from marketdata.services import candles_store
from marketdata.types import CandleBar
from tests.factories import BotFactory
from tests.trading.market_data import minute_bars
from trading.choices import PlanStatus, ReplaySource, ReplayStatus
from trading.decisions.candles import MemoryCandles
from trading.decisions.services import signals_compute
from trading.decisions.strategies import strategy_params_clean
from trading.fanout.services import signal_plan
from trading.models import ExecutionPlan, ReplayFill, ReplayRun, Signal
from trading.tracker.replay import PaperSink, ReplaySettings, replay_steps
from trading.tracker.selectors import report_build, subject_get
from trading.tracker.services import replay_create, replay_execute

HISTORY_FROM = datetime(2023, 3, 6, tzinfo=UTC)
# A falling market (8-10 March: bearish) and a rising one (13-20 March: bullish).
WINDOWS = [(datetime(2023, 3, 9, 13, tzinfo=UTC), 60), (datetime(2023, 3, 14, 12, tzinfo=UTC), 90)]
SETTINGS = [
    ("sma_crossover", {"fast": 9, "slow": 21}, "1m"),
    ("rsi_mean_reversion", {"period": 14, "oversold": 30, "overbought": 70}, "5m"),
    ("dca", {"every": 3}, "1m"),
]


def _bars(until: datetime) -> list[CandleBar]:
    return [
        CandleBar(open_time=b.open_time, open=b.open, high=b.high, low=b.low, close=b.close, volume=b.volume)
        for b in minute_bars()
        if HISTORY_FROM <= b.open_time < until
    ]


@pytest.fixture
def stored(instruments):
    last_window, length = WINDOWS[-1]
    bars = _bars(last_window + timedelta(minutes=length))
    candles_store(rows=[(instruments["BTC/USDT"].pk, bar) for bar in bars])
    return bars


def _window_minutes():
    return [start + timedelta(minutes=i) for start, length in WINDOWS for i in range(length)]


def test_memory_candles_aggregate_exactly_like_the_stored_candles(stored):
    memory = MemoryCandles(symbol="BTC/USDT", minutes=stored)
    for end in (datetime(2023, 3, 9, 13, 37, tzinfo=UTC), datetime(2023, 3, 14, 12, 5, tzinfo=UTC)):
        for timeframe, limit in (("1m", 30), ("5m", 50), ("1h", 72), ("1d", 3)):
            assert memory.bars(symbol="BTC/USDT", timeframe=timeframe, limit=limit, end=end) == candle_list(
                symbol="BTC/USDT", timeframe=timeframe, limit=limit, end=end
            ), (timeframe, end)


def test_the_replay_decides_and_gates_as_the_live_bot_does(stored, user_a, instruments):
    btc = instruments["BTC/USDT"]
    for strategy, params, timeframe in SETTINGS:
        _, params_key = strategy_params_clean(strategy, params)
        BotFactory(user=user_a, instrument=btc, strategy=strategy, params=params, params_key=params_key,
                   timeframe=timeframe, name=f"{strategy} bot")

    # The live path: the signal engine on every closed minute, then the planner on each actionable signal.
    for minute in _window_minutes():
        for signal in signals_compute(symbol="BTC/USDT", candle_open_time=minute, published_at=timezone.now()):
            signal_plan(signal_id=signal.pk)
    with system_context(reason="tests: read the signal engine's decisions"):
        live = {
            (s.strategy, s.candle_open_time): (s.action, s.reason, s.price, s.regime if s.action != "hold" else "")
            for s in Signal.objects.all()
        }
        blocked_live = {
            (p.signal.strategy, p.signal.candle_open_time): p.reason
            for p in ExecutionPlan.objects.filter(status=PlanStatus.BLOCKED).select_related("signal")
        }

    # The replay over the same candles, in memory.
    memory = MemoryCandles(symbol="BTC/USDT", minutes=stored)
    replayed, blocked_replay = {}, {}
    for strategy, params, timeframe in SETTINGS:
        settings = ReplaySettings(
            symbol="BTC/USDT", strategy_key=strategy, params=params, timeframe=timeframe,
            allocation=Decimal("100"), max_position=Decimal("1"), daily_loss_limit=Decimal("50"),
            taker_fee=Decimal("0.001"), max_fee=Decimal("0.0025"), quantity_precision=btc.quantity_precision,
            price_precision=btc.price_precision, min_notional=btc.min_notional, quote=btc.quote,
        )
        for step in replay_steps(source=memory, settings=settings, minutes=_window_minutes(),
                                 sink=PaperSink(price_precision=btc.price_precision, quote=btc.quote)):
            d = step.decision
            replayed[(strategy, d.candle_open_time)] = (d.action, d.reason, d.price, step.regime)
            if step.block_reason:
                blocked_replay[(strategy, d.candle_open_time)] = step.block_reason

    assert replayed == live
    assert blocked_replay == blocked_live
    # The comparison is not empty: both regimes, buys and sells, and blocks were exercised.
    actions = [value[0] for value in live.values()]
    assert actions.count("buy") >= 5 and actions.count("sell") >= 1
    assert {value[3] for value in live.values()} >= {"bearish", "bullish"}
    assert blocked_live and len(blocked_live) < actions.count("buy") + actions.count("sell")


def test_a_replay_over_stored_candles_runs_to_done_and_feeds_the_statistics(stored, user_a, instruments):
    with tenant(user_a.pk):
        run = replay_create(
            user=user_a, name="DCA in the rally", symbol="BTC/USDT", strategy="dca", params={"every": 5},
            timeframe="1m", allocation="100", max_position="0.1", daily_loss_limit="50",
            source=ReplaySource.STORED, start=WINDOWS[-1][0], end=WINDOWS[-1][0] + timedelta(minutes=90),
            enqueue=False,
        )
    assert replay_execute(run_id=run.pk, user_id=user_a.pk) == ReplayStatus.DONE
    assert replay_execute(run_id=run.pk, user_id=user_a.pk) == ReplayStatus.DONE  # a redelivery does nothing
    with tenant(user_a.pk):
        run = ReplayRun.objects.get(pk=run.pk)
        fills = list(ReplayFill.objects.filter(run=run))
        report = report_build(user=user_a, subject=subject_get(user=user_a, kind="replay", key=str(run.pk)))
    assert run.candles_total == run.candles_done == 90 and run.progress_pct == 100
    assert run.data_from == WINDOWS[-1][0]
    # Every fifth minute is a scheduled buy; the rally is bullish, so none is blocked.
    assert run.decisions == 18 and run.blocked == 0 and len(fills) == 18
    assert all(f.side == "buy" and f.regime == "bullish" for f in fills)
    # Paper fills: the close plus 0.05 % slippage, rounded up to the tick; 0.1 % fee.
    close = {b.open_time: b.close for b in stored}[fills[0].executed_at - timedelta(minutes=1)]
    assert fills[0].price == (close * Decimal("1.0005")).quantize(Decimal("0.01"), rounding="ROUND_UP")
    assert fills[0].fee == (fills[0].quantity * fills[0].price * Decimal("0.001")).quantize(Decimal("0.00000001"))
    assert report.subject.simulated and report.stats.trades == 0 and len(report.journal.open) == 18
    assert report.journal.unrealized == sum(
        (f.quantity * run.mark_price - (f.quantity * f.price + f.fee) for f in fills), Decimal(0)
    )


def test_a_replay_without_candles_fails_with_a_message(user_a, instruments):
    with tenant(user_a.pk):
        run = replay_create(
            user=user_a, name="Empty", symbol="BTC/USDT", strategy="dca", params={"every": 5}, timeframe="1m",
            allocation="100", max_position="0.05", daily_loss_limit="50", source=ReplaySource.STORED,
            start=datetime(2020, 1, 1, tzinfo=UTC), end=datetime(2020, 1, 2, tzinfo=UTC), enqueue=False,
        )
    assert replay_execute(run_id=run.pk, user_id=user_a.pk) == ReplayStatus.FAILED
    with tenant(user_a.pk):
        assert ReplayRun.objects.get(pk=run.pk).error == "There are no candles to replay for this pair and range."
