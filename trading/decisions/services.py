"""The signal engine: on each closed candle, one decision per (strategy, params, pair, timeframe) of enabled
bots, with the pair's regime. Signals and regime readings are shared reference rows, written by the
engine only (`system_context`); an actionable new signal is fanned out by the `trading.signal_fan_out` task.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.db import transaction
from django.utils import timezone

from core.jobs import task_enqueue
from core.money import ZERO
from core.rls import system_context
from marketdata.selectors import instrument_get
from trading.choices import BotStatus, SignalAction, SignalStatus
from trading.decisions.candles import MINUTE, CandleSource, StoredCandles
from trading.decisions.regime import REGIME_TIMEFRAME, RegimeParams, RegimeResult, regime_classify
from trading.decisions.strategies import strategy_decide, strategy_get
from trading.events import regime_changed
from trading.models import Bot, RegimeReading, Signal

TIMEFRAME_SECONDS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400}


def timeframe_closes(timeframe: str, candle_open_time) -> bool:
    """Does the one-minute candle opening at `candle_open_time` close a `timeframe` bar?"""
    close = candle_open_time + timedelta(minutes=1)
    return int(close.timestamp()) % TIMEFRAME_SECONDS[timeframe] == 0


@dataclass(frozen=True)
class SignalDecision:
    """What a strategy decided at one bar close: the live engine stores it as a Signal, the replay keeps it."""

    candle_open_time: datetime
    action: str
    reason: str
    price: Decimal


def signal_decide(
    *, source: CandleSource, symbol: str, strategy_key: str, params: dict, timeframe: str, minute_open_time: datetime
) -> SignalDecision:
    """The strategy's decision at the close of the one-minute candle opening at `minute_open_time`, from the
    bars of `timeframe` closed by then. The one decision path of the live engine and of the replay."""
    strategy = strategy_get(strategy_key)
    candles = source.bars(
        symbol=symbol, timeframe=timeframe, limit=strategy.candles_needed(params) + 1, end=minute_open_time + MINUTE
    )
    decision = strategy_decide(strategy_key, candles, params)
    return SignalDecision(
        candle_open_time=candles[-1].open_time if candles else minute_open_time,
        action=decision.action,
        reason=decision.reason[:300],
        price=candles[-1].close if candles else ZERO,
    )


def regime_at(*, source: CandleSource, symbol: str, minute_open_time: datetime) -> tuple[datetime | None, RegimeResult]:
    """The gatekeeper's regime as of the close of the minute opening at `minute_open_time` (the newest
    hourly bar may still be forming), with the open time of that hourly bar."""
    params = RegimeParams()
    candles = source.bars(
        symbol=symbol, timeframe=REGIME_TIMEFRAME, limit=params.candles_needed, end=minute_open_time + MINUTE
    )
    return (candles[-1].open_time if candles else None), regime_classify(candles, params)


def regime_current(*, instrument, as_of=None, source: CandleSource | None = None) -> RegimeReading:
    """Classify the pair from its hourly candles (as of the close of the minute opening at `as_of`, or of the
    newest stored minute), storing one reading per hourly bar; a reading that differs from the one before
    sends `regime_changed` after the commit."""
    minute = as_of or timezone.now()
    bar_time, result = regime_at(source=source or StoredCandles(), symbol=instrument.symbol, minute_open_time=minute)
    as_of = bar_time or minute
    reading, created = RegimeReading.objects.get_or_create(
        instrument=instrument, timeframe=REGIME_TIMEFRAME, as_of=as_of,
        defaults={"regime": result.regime, "sma_slope_pct": result.sma_slope_pct, "adx": result.adx},
    )
    previous: str | None = None
    if created:
        before = (
            RegimeReading.objects.filter(instrument=instrument, timeframe=REGIME_TIMEFRAME, as_of__lt=as_of)
            .order_by("-as_of")
            .values_list("regime", flat=True)
            .first()
        )
        previous = before if before is not None and before != reading.regime else None
    elif reading.regime != result.regime:
        # The hourly bar was still forming when it was last classified.
        previous = reading.regime
        reading.regime, reading.sma_slope_pct, reading.adx = result.regime, result.sma_slope_pct, result.adx
        reading.save(update_fields=["regime", "sma_slope_pct", "adx"])
    if previous is not None:
        change = {
            "symbol": instrument.symbol, "previous": previous, "regime": reading.regime,
            "reading_id": reading.pk, "as_of": reading.as_of,
        }
        transaction.on_commit(lambda: regime_changed.send_robust(sender=RegimeReading, **change))
    return reading


def signals_compute(*, symbol: str, candle_open_time, published_at=None) -> list[Signal]:
    """On a one-minute candle close: one decision per distinct (strategy, params, timeframe) of enabled bots
    on this pair whose bar just closed. Returns the signals that call for action (already planned or not).

    `published_at` is the wall-clock time the feed reported the close (the replay feed's market time is in
    the past); a signal's staleness is measured from it."""
    instrument = instrument_get(symbol=symbol)
    with system_context(reason=f"signal engine: which bot settings trade {symbol}"):
        settings_in_use = {
            (strategy, params_key, timeframe): params
            for strategy, params_key, timeframe, params in Bot.objects.filter(
                instrument=instrument, status=BotStatus.ENABLED
            ).values_list("strategy", "params_key", "timeframe", "params")
        }
    due = {key: params for key, params in settings_in_use.items() if timeframe_closes(key[2], candle_open_time)}
    if not due:
        return []
    closed_at = published_at or timezone.now()
    # Signals and regime readings are shared reference rows, written by the signal engine only.
    source = StoredCandles()
    with system_context(reason=f"signal engine: decisions on {symbol}"):
        regime = regime_current(instrument=instrument, as_of=candle_open_time, source=source)
        actionable = []
        for (strategy_key, params_key, timeframe), params in sorted(due.items()):
            decision = signal_decide(
                source=source, symbol=symbol, strategy_key=strategy_key, params=params, timeframe=timeframe,
                minute_open_time=candle_open_time,
            )
            signal, created = Signal.objects.get_or_create(
                instrument=instrument, strategy=strategy_key, params_key=params_key, timeframe=timeframe,
                candle_open_time=decision.candle_open_time,
                defaults={
                    "params": params, "closed_at": closed_at, "action": decision.action,
                    "price": decision.price, "regime": regime.regime, "reason": decision.reason,
                    "status": SignalStatus.HOLD if decision.action == SignalAction.HOLD else SignalStatus.PLANNED,
                },
            )
            if signal.action != SignalAction.HOLD:
                actionable.append(signal)
                if created:
                    transaction.on_commit(partial(task_enqueue, "trading.signal_fan_out", args=[signal.pk]))
        return actionable
