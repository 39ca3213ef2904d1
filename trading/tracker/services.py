"""Writes of the strategy tracker: replays (simulations of a bot's settings over recorded candles).

`replay_create` stores the run and starts the `trading.replay_run` task after commit; `replay_execute` (the
task) walks the candles through the live decision code (trading/tracker/replay.py), saving its progress as
it goes, and stores the simulated fills with the result.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import structlog
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from core.audit import audit_record
from core.errors import DomainError
from core.jobs import task_enqueue
from core.money import plain
from core.rls import tenant
from marketdata.selectors import TIMEFRAMES, candle_list, instrument_get, recorded_candles
from marketdata.types import CandleBar
from trading.choices import ReplaySource, ReplayStatus
from trading.common import positive_input, request_actor
from trading.decisions.candles import MemoryCandles
from trading.decisions.regime import RegimeParams
from trading.decisions.strategies import strategy_get, strategy_params_clean
from trading.models import Bot, ReplayFill, ReplayRun
from trading.tracker.replay import PaperSink, ReplaySettings, replay_steps

logger = structlog.get_logger(__name__)

STORED_RANGE_MAX = timedelta(days=31)
STORED_PAGE = 5000


AMOUNT_MAX = Decimal(10) ** 15


def _bounded(value: Decimal, field: str) -> Decimal:
    if value >= AMOUNT_MAX or value.as_tuple().exponent < -12:  # type: ignore[operator]
        raise DomainError("Enter a smaller number (at most 12 decimal places).", field=field)
    return value


@transaction.atomic
def replay_create(
    *,
    user,
    name: str,
    symbol: str,
    strategy: str,
    params: dict | None,
    timeframe: str,
    allocation,
    max_position,
    daily_loss_limit,
    source: str = ReplaySource.RECORDING,
    start: datetime | None = None,
    end: datetime | None = None,
    bot: Bot | None = None,
    enqueue: bool = True,
    request: HttpRequest | None = None,
) -> ReplayRun:
    """Store a simulation and start it (Celery, after commit; `enqueue=False` leaves it queued for the caller
    to run with `replay_execute`). Settings are checked as a bot's are."""
    name = (name or "").strip()
    if not name:
        raise DomainError("Give the simulation a name.", field="name")
    if len(name) > 120:
        raise DomainError("The name is at most 120 characters.", field="name")
    instrument = instrument_get(symbol=symbol)
    cleaned, params_key = strategy_params_clean(strategy, params)
    if timeframe not in TIMEFRAMES:
        raise DomainError(f"Replays run on {', '.join(TIMEFRAMES)} candles.", field="timeframe")
    if source not in ReplaySource.values:
        raise DomainError("Choose where the candles come from.", field="source")
    if source == ReplaySource.STORED:
        if start is None or end is None:
            raise DomainError("Stored candles need a start and an end.", field="start")
        if start >= end:
            raise DomainError("The start must be before the end.", field="start")
        if end - start > STORED_RANGE_MAX:
            raise DomainError("Replay at most 31 days of stored candles at once.", field="end")
    else:
        start = end = None
    allocation = _bounded(positive_input(allocation, field="allocation", label="The per-trade allocation"), "allocation")
    max_position = _bounded(
        positive_input(max_position, field="max_position", label="The maximum position"), "max_position"
    )
    daily_loss_limit = _bounded(
        positive_input(daily_loss_limit, field="daily_loss_limit", label="The daily loss limit"), "daily_loss_limit"
    )
    if allocation < instrument.min_notional:
        raise DomainError(
            f"Each trade must be worth at least {plain(instrument.min_notional)} {instrument.quote} "
            f"on {instrument.symbol}.", field="allocation",
        )
    run = ReplayRun.objects.create(
        user=user,
        name=name,
        bot=bot,
        instrument=instrument,
        strategy=strategy,
        params=cleaned,
        params_key=params_key,
        timeframe=timeframe,
        allocation=allocation,
        max_position=max_position,
        daily_loss_limit=daily_loss_limit,
        fee_rate=Decimal(settings.TRADING_PAPER_FEE_RATE),
        slippage_rate=Decimal(settings.TRADING_PAPER_SLIPPAGE_RATE),
        source=source,
        start=start,
        end=end,
    )
    audit_record(
        action="trading.replay_created", user=user, actor=request_actor(request, user), target=run,
        after={"name": name, "symbol": instrument.symbol, "strategy": strategy, "params": cleaned,
               "timeframe": timeframe, "source": source},
        request=request,
    )
    if enqueue:
        run_ref = [run.pk, user.pk]
        transaction.on_commit(lambda: task_enqueue("trading.replay_run", args=run_ref))
    return run


def replay_from_bot(*, user, bot: Bot, enqueue: bool = True, request: HttpRequest | None = None) -> ReplayRun:
    """A replay of one of the trader's bots over the recording: the bot's own settings."""
    return replay_create(
        user=user, name=f"{bot.name} over the recording", symbol=bot.instrument.symbol, strategy=bot.strategy,
        params=bot.params, timeframe=bot.timeframe, allocation=bot.allocation, max_position=bot.max_position,
        daily_loss_limit=bot.daily_loss_limit, bot=bot, enqueue=enqueue, request=request,
    )


def _warmup(run: ReplayRun) -> timedelta:
    """History read before a stored range's start: what the regime classifier and the strategy need."""
    strategy_bars = strategy_get(run.strategy).candles_needed(run.params) + 1
    return timedelta(hours=RegimeParams().candles_needed) + TIMEFRAMES[run.timeframe] * strategy_bars


def _candles(run: ReplayRun) -> list[CandleBar]:
    if run.source == ReplaySource.RECORDING:
        return recorded_candles(symbol=run.instrument.symbol)
    bars: list[CandleBar] = []
    cursor = run.start - _warmup(run) if run.start is not None else None
    while cursor is not None and run.end is not None and cursor < run.end:
        page = candle_list(symbol=run.instrument.symbol, timeframe="1m", limit=STORED_PAGE, start=cursor, end=run.end)
        if not page:
            break
        bars.extend(page if not bars else [b for b in page if b.open_time > bars[-1].open_time])
        if len(page) < STORED_PAGE:
            break
        cursor = page[-1].open_time + timedelta(minutes=1)
    return bars


def _progress(run_id: int, user_id: int, **fields) -> None:
    with tenant(user_id):
        ReplayRun.objects.filter(pk=run_id).update(**fields)


def replay_execute(*, run_id: int, user_id: int) -> str:
    """Run a queued replay as its owner; returns its final status. A run already started or finished is
    left alone (a redelivered task message does nothing)."""
    with tenant(user_id):
        claimed = ReplayRun.objects.filter(pk=run_id, status=ReplayStatus.QUEUED).update(
            status=ReplayStatus.RUNNING, started_at=timezone.now()
        )
        run = ReplayRun.objects.select_related("instrument").filter(pk=run_id).first()
    if run is None:
        return "missing"
    if not claimed:
        return run.status
    try:
        minutes = _candles(run)
        replayed = [bar.open_time for bar in minutes if run.start is None or bar.open_time >= run.start]
        if not replayed:
            raise DomainError("There are no candles to replay for this pair and range.")
        _progress(run_id, user_id, candles_total=len(replayed), data_from=replayed[0], data_to=replayed[-1])
        instrument = run.instrument
        source = MemoryCandles(symbol=instrument.symbol, minutes=minutes)
        replay_settings = ReplaySettings(
            symbol=instrument.symbol, strategy_key=run.strategy, params=run.params, timeframe=run.timeframe,
            allocation=run.allocation, max_position=run.max_position, daily_loss_limit=run.daily_loss_limit,
            taker_fee=run.fee_rate, max_fee=Decimal(settings.TRADING_BOT_MAX_TAKER_FEE),
            quantity_precision=instrument.quantity_precision, price_precision=instrument.price_precision,
            min_notional=instrument.min_notional, quote=instrument.quote,
        )
        fills, decisions, blocked = [], 0, 0
        for step in replay_steps(
            source=source, settings=replay_settings, minutes=replayed,
            sink=PaperSink(price_precision=instrument.price_precision, quote=instrument.quote),
            progress=lambda done: _progress(run_id, user_id, candles_done=done),
        ):
            if step.decision.action == "hold":
                continue
            decisions += 1
            blocked += bool(step.block_reason)
            if step.fill is not None:
                fills.append(ReplayFill(
                    user_id=user_id, run_id=run_id, side=step.side, quantity=step.fill.quantity,
                    price=step.fill.price, fee=step.fill.fee, executed_at=step.fill.executed_at,
                    regime=step.regime, reason=step.decision.reason,
                ))
        daily = {}
        for bar in minutes:
            if bar.open_time >= replayed[0]:
                daily[bar.open_time.date().isoformat()] = str(bar.close)
        with tenant(user_id):
            ReplayFill.objects.bulk_create(fills, batch_size=1000)
            ReplayRun.objects.filter(pk=run_id).update(
                status=ReplayStatus.DONE, decisions=decisions, blocked=blocked, candles_done=len(replayed),
                mark_price=minutes[-1].close, daily_closes=daily, finished_at=timezone.now(),
            )
        logger.info("trading.replay_done", run=run_id, fills=len(fills), decisions=decisions, blocked=blocked)
        return ReplayStatus.DONE
    except DomainError as error:
        _progress(run_id, user_id, status=ReplayStatus.FAILED, error=str(error)[:300], finished_at=timezone.now())
        return ReplayStatus.FAILED
    except Exception:
        logger.exception("trading.replay_failed", run=run_id)
        _progress(run_id, user_id, status=ReplayStatus.FAILED, error="The simulation stopped on an internal error.",
                  finished_at=timezone.now())
        return ReplayStatus.FAILED


@transaction.atomic
def replay_delete(*, user, run: ReplayRun, request: HttpRequest | None = None) -> None:
    audit_record(
        action="trading.replay_deleted", user=user, actor=request_actor(request, user), target=run,
        before={"name": run.name, "status": run.status}, request=request,
    )
    run.delete()
