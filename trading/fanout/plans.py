"""What the single path and the batch both say about a plan: its order's id and what its trader is told."""

from __future__ import annotations

import uuid

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
