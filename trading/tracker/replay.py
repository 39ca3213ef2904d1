"""The replay: what a bot's settings would have done over recorded candles. A SIMULATION, never an order.

It drives the live code, not a copy of it: each bar close is decided by `decisions.services.signal_decide`
(the live engine's decision path) over a `decisions.candles.MemoryCandles` source, the regime by
`decisions.services.regime_at`, the gatekeeper's verdict by `fanout.plans.gate_block_reason`, the size by
`fanout.plans.plan_size`, the fill by the paper exchange's `market_fill` (slippage, tick, fee) and the bot's
book by `bots.services.bot_fill_account` on an unsaved Bot. What differs from live is only where the candles
come from and where an execution goes (an `ExecutionSink`), and that the simulated bot's cash is not limited
(live buys are cut to the cash the portfolio holds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from core.money import ZERO
from trading.bots.services import bot_fill_account
from trading.choices import PlanStatus, SignalAction
from trading.decisions.candles import MINUTE, CandleSource
from trading.decisions.services import SignalDecision, regime_at, signal_decide, timeframe_closes
from trading.exchanges.base import ExchangeFill
from trading.exchanges.paper import market_fill
from trading.fanout.plans import BotBook, Sizing, gate_block_reason, plan_side, plan_size
from trading.models import Bot


@dataclass(frozen=True)
class ReplaySettings:
    symbol: str
    strategy_key: str
    params: dict
    timeframe: str
    allocation: Decimal
    max_position: Decimal
    daily_loss_limit: Decimal
    taker_fee: Decimal
    max_fee: Decimal
    quantity_precision: int
    price_precision: int
    min_notional: Decimal
    quote: str


@dataclass(frozen=True)
class ReplayStep:
    """One bar close of the replay: the decision, and for a buy or sell the regime, the gatekeeper's verdict,
    the size and the simulated fill."""

    minute_open_time: datetime
    decision: SignalDecision
    regime: str = ""
    block_reason: str = ""
    sizing: Sizing | None = None
    side: str = ""
    fill: ExchangeFill | None = None


class ExecutionSink(Protocol):
    def execute(self, *, side: str, quantity: Decimal, price: Decimal, at: datetime, ref: str) -> ExchangeFill: ...


@dataclass(frozen=True)
class PaperSink:
    """Executions fill as the paper exchange fills a market order at the deciding candle's close."""

    price_precision: int
    quote: str

    def execute(self, *, side: str, quantity: Decimal, price: Decimal, at: datetime, ref: str) -> ExchangeFill:
        return market_fill(
            side=side, price=price, quantity=quantity, price_precision=self.price_precision,
            quote_currency=self.quote, at=at, client_order_id=ref,
        )


def replay_steps(
    *,
    source: CandleSource,
    settings: ReplaySettings,
    minutes: Sequence[datetime],
    sink: ExecutionSink,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 2000,
) -> Iterator[ReplayStep]:
    """Walk the one-minute closes in `minutes` (oldest first) as the live engine would see them."""
    book = Bot(
        allocation=settings.allocation, max_position=settings.max_position,
        daily_loss_limit=settings.daily_loss_limit, position_quantity=ZERO, position_cost=ZERO,
        realized_pnl=ZERO, realized_pnl_day=ZERO, pnl_day=None,
    )
    for index, minute in enumerate(minutes):
        if progress is not None and index and index % progress_every == 0:
            progress(index)
        if not timeframe_closes(settings.timeframe, minute):
            continue
        decision = signal_decide(
            source=source, symbol=settings.symbol, strategy_key=settings.strategy_key, params=settings.params,
            timeframe=settings.timeframe, minute_open_time=minute,
        )
        if decision.action == SignalAction.HOLD:
            yield ReplayStep(minute_open_time=minute, decision=decision)
            continue
        _, regime = regime_at(source=source, symbol=settings.symbol, minute_open_time=minute)
        block = gate_block_reason(strategy_key=settings.strategy_key, action=decision.action, regime=regime.regime)
        if block:
            yield ReplayStep(minute_open_time=minute, decision=decision, regime=regime.regime, block_reason=block)
            continue
        closed_at = minute + MINUTE
        today = closed_at.date()
        sizing = plan_size(
            book=BotBook(
                allocation=book.allocation, max_position=book.max_position, daily_loss_limit=book.daily_loss_limit,
                position_quantity=book.position_quantity,
                loss_today=-(book.realized_pnl_day if book.pnl_day == today else ZERO),
                taker_fee=settings.taker_fee,
            ),
            action=decision.action, price=decision.price, quantity_precision=settings.quantity_precision,
            min_notional=settings.min_notional, max_fee=settings.max_fee,
        )
        if sizing.status != PlanStatus.PENDING:
            yield ReplayStep(minute_open_time=minute, decision=decision, regime=regime.regime, sizing=sizing)
            continue
        side = plan_side(decision.action)
        fill = sink.execute(
            side=side, quantity=sizing.quantity, price=decision.price, at=closed_at,
            ref=f"replay:{minute:%Y%m%d%H%M}",
        )
        bot_fill_account(book, side=side, fill=fill, quote=settings.quote, today=today)
        yield ReplayStep(
            minute_open_time=minute, decision=decision, regime=regime.regime, sizing=sizing, side=side, fill=fill
        )
    if progress is not None:
        progress(len(minutes))
