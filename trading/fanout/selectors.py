"""Reads of a bot's execution plans and blocked executions. Each filters by user (RLS is the backstop)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from trading.common import user_id_of
from trading.models import BlockedExecution, Bot, ExecutionPlan


def plan_list(*, user, bot: Bot | None = None) -> QuerySet[ExecutionPlan]:
    plans = ExecutionPlan.objects.filter(user_id=user_id_of(user)).select_related("signal", "order", "bot")
    if bot is not None:
        plans = plans.filter(bot=bot)
    return plans.order_by("-created_at", "-id")


def blocked_execution_list(*, user, bot: Bot | None = None) -> QuerySet[BlockedExecution]:
    rows = BlockedExecution.objects.filter(user_id=user_id_of(user)).select_related(
        "bot", "signal", "signal__instrument"
    )
    if bot is not None:
        rows = rows.filter(bot=bot)
    return rows.order_by("-created_at", "-id")


def blocked_execution_get(*, user, pk) -> BlockedExecution:
    try:
        return blocked_execution_list(user=user).get(pk=int(pk))
    except (BlockedExecution.DoesNotExist, TypeError, ValueError, OverflowError):
        raise Http404("No such blocked execution.") from None
