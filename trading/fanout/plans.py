"""What the single path and the batch both say about a plan: its order's id and what its trader is told;
and the gatekeeper's verdict and a plan's size, which the live planner and the replay both use.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from core.money import ZERO
from trading.choices import OrderSide, PlanStatus, SignalAction
from trading.common import quantize_down
from trading.decisions.strategies import strategy_get
from trading.events import executions_blocked
from trading.models import BlockedExecution, ExecutionPlan

PLAN_NAMESPACE = uuid.UUID("6f1d3c52-8a4e-4d8e-9a43-5b0f5f0c7e21")
NOTIFY_BLOCKED = "trading.execution_blocked"
BLOCKED_LINK = "/trading/blocked/"
INSUFFICIENT_FOR_PLAN = "Insufficient balance for this trade."


def plan_order_id(plan_id: int) -> uuid.UUID:
    """The client order id of a plan's order: derived from the plan, so any retry names the same order."""
    return uuid.uuid5(PLAN_NAMESPACE, f"plan:{plan_id}")


def plan_skipped_notice(*, plan: ExecutionPlan, bot_name: str, error) -> dict:
    """What the trader is told when their bot's plan could not execute (kind, message, link, dedup key)."""
    return {
        "kind": NOTIFY_BLOCKED,
        "message": f"Bot {bot_name} did not {plan.side}: {error}",
        "link": f"/trading/bots/{plan.bot_id}/",
        "dedup_key": f"plan-skipped:{plan.pk}",
    }


def blocked_message(*, bot_name: str, side: str, reason: str) -> str:
    return f"Bot {bot_name}: {side} blocked by the regime gatekeeper. {reason}"


def blocked_payload(blocked: BlockedExecution) -> dict:
    """One entry of the `executions_blocked` event (trading.events)."""
    return {
        "blocked_id": blocked.pk, "user_id": blocked.user_id, "bot_id": blocked.bot_id,
        "signal_id": blocked.signal_id, "regime": blocked.regime, "reason": blocked.reason,
    }


def executions_blocked_send(payloads: list[dict]) -> None:
    if payloads:
        executions_blocked.send_robust(sender=BlockedExecution, blocks=payloads)


def gate_block_reason(*, strategy_key: str, action: str, regime: str) -> str:
    """The regime gatekeeper: why a strategy may not act on `action` in `regime`, or "" when it may."""
    strategy = strategy_get(strategy_key)
    allowed = strategy.regimes_for(action)
    if regime in allowed:
        return ""
    return f"{strategy.label} does not {action} in a {regime} market (allowed: {', '.join(sorted(allowed))})."


@dataclass(frozen=True)
class BotBook:
    """What sizing needs to know about a bot: its limits and what it holds and lost today."""

    allocation: Decimal
    max_position: Decimal
    daily_loss_limit: Decimal
    position_quantity: Decimal
    loss_today: Decimal
    taker_fee: Decimal | None


@dataclass(frozen=True)
class Sizing:
    status: str
    quantity: Decimal = ZERO
    reason: str = ""


def plan_size(
    *, book: BotBook, action: str, price: Decimal, quantity_precision: int, min_notional: Decimal, max_fee: Decimal
) -> Sizing:
    """A plan the gatekeeper let through: buys are sized min(allocation / price, max position - held), skipped
    past the daily loss limit or below the minimum notional; sells sell what the bot holds."""
    if book.taker_fee is None or book.taker_fee > max_fee:
        return Sizing(PlanStatus.SKIPPED, reason="The venue's taker fee is above the maximum for bots.")
    if action == SignalAction.BUY:
        room = book.max_position - book.position_quantity
        quantity = quantize_down(min(book.allocation / price, room), quantity_precision) if room > 0 else ZERO
        if book.daily_loss_limit and book.loss_today >= book.daily_loss_limit:
            return Sizing(PlanStatus.SKIPPED, reason="Daily loss limit reached.")
        if quantity * price < min_notional:
            return Sizing(PlanStatus.SKIPPED, reason="Maximum position reached.")
        return Sizing(PlanStatus.PENDING, quantity=quantity)
    quantity = quantize_down(book.position_quantity, quantity_precision)
    if quantity <= 0 or quantity * price < min_notional:
        return Sizing(PlanStatus.SKIPPED, reason="Nothing to sell.")
    return Sizing(PlanStatus.PENDING, quantity=quantity)


def plan_side(action: str) -> str:
    return OrderSide.BUY if action == SignalAction.BUY else OrderSide.SELL
