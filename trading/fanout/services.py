"""The execution fan-out: one signal becomes one plan per eligible bot, each executed as its owner.

Planning is the reviewed cross-tenant step (`system_context`); each plan then executes in its owner's
tenant context, a chunk at a time: together through the batch where the venue can batch
(trading/fanout/batch.py), otherwise, and whenever the batch cannot finish, one by one (`plan_execute`, itself
a batch of one where it can be). The batch writes through `core.unit_of_work.UnitOfWork`.
The sweeper (`trading_sweep`) finds what a lost queue message left behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import structlog
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from core.errors import DomainError
from core.money import ZERO
from core.notifications import notify
from core.rls import system_context, tenant
from marketdata.selectors import quote_latest_map
from trading.choices import (
    BotStatus,
    OrderSide,
    OrderSource,
    OrderStatus,
    OrderType,
    PlanStatus,
    SignalAction,
    SignalStatus,
)
from trading.exchanges.registry import adapter_for
from trading.fanout import batch
from trading.fanout.plans import (
    BLOCKED_LINK,
    INSUFFICIENT_FOR_PLAN,
    NOTIFY_BLOCKED,
    BotBook,
    blocked_message,
    blocked_payload,
    executions_blocked_send,
    gate_block_reason,
    plan_order_id,
    plan_side,
    plan_size,
    plan_skipped_notice,
)
from trading.models import BlockedExecution, Bot, ExecutionPlan, Order, Signal
from trading.orders.services import order_place
from trading.orders.validation import available_balance

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class FanOut:
    signal_id: int
    stale: bool
    planned: int
    pending: list[tuple[int, int]]
    blocked: list[tuple[int, int]]
    symbol: str = ""


def signal_plan(*, signal_id: int, now=None) -> FanOut:
    """Turn one signal into one plan per eligible bot, in bulk, through the reviewed cross-tenant path.

    Idempotent: plans and blocked executions are unique per (signal, bot) and inserted with ON CONFLICT DO
    NOTHING, so planning the same signal again adds nothing and returns the plans still to execute.
    A signal older than TRADING_SIGNAL_MAX_LAG_SECONDS is rejected, not executed late.
    """
    now = now or timezone.now()
    with system_context(reason=f"fan-out planning for signal {signal_id}"):
        signal = Signal.objects.select_for_update(of=("self",)).select_related("instrument").get(pk=signal_id)
        instrument = signal.instrument
        if signal.action == SignalAction.HOLD:
            return FanOut(signal_id=signal_id, stale=False, planned=0, pending=[], blocked=[], symbol=instrument.symbol)
        lag = (now - signal.closed_at).total_seconds()
        if signal.planned_at is None and lag > settings.TRADING_SIGNAL_MAX_LAG_SECONDS:
            signal.status = SignalStatus.STALE
            signal.reason = f"{signal.reason} — rejected: {int(lag)}s old, more than the allowed lag"[:300]
            signal.save(update_fields=["status", "reason"])
            logger.warning("trading.signal_stale", signal=signal_id, lag_seconds=int(lag))
            return FanOut(signal_id=signal_id, stale=True, planned=0, pending=[], blocked=[], symbol=instrument.symbol)
        if signal.status == SignalStatus.STALE:
            return FanOut(signal_id=signal_id, stale=True, planned=0, pending=[], blocked=[], symbol=instrument.symbol)
        block_reason = gate_block_reason(strategy_key=signal.strategy, action=signal.action, regime=signal.regime)
        max_fee = Decimal(settings.TRADING_BOT_MAX_TAKER_FEE)
        today = now.date()
        bots = (
            Bot.objects.filter(
                instrument=instrument, strategy=signal.strategy, params_key=signal.params_key,
                timeframe=signal.timeframe, status=BotStatus.ENABLED,
            )
            .exclude(plans__signal=signal)
            .select_related("connection")
        )
        plans, blocks = [], []
        side = plan_side(signal.action)
        for bot in bots.iterator(chunk_size=2000):
            plan = ExecutionPlan(
                user_id=bot.user_id, signal=signal, bot=bot, side=side, reference_price=signal.price,
            )
            if block_reason:
                plan.status, plan.reason = PlanStatus.BLOCKED, block_reason
                blocks.append(BlockedExecution(
                    user_id=bot.user_id, bot=bot, signal=signal, side=side, regime=signal.regime, reason=plan.reason,
                ))
            else:
                sizing = plan_size(
                    book=BotBook(
                        allocation=bot.allocation, max_position=bot.max_position,
                        daily_loss_limit=bot.daily_loss_limit, position_quantity=bot.position_quantity,
                        loss_today=-(bot.realized_pnl_day if bot.pnl_day == today else ZERO),
                        taker_fee=bot.connection.taker_fee,
                    ),
                    action=signal.action, price=signal.price, quantity_precision=instrument.quantity_precision,
                    min_notional=instrument.min_notional, max_fee=max_fee,
                )
                plan.quantity = sizing.quantity
                if sizing.status != PlanStatus.PENDING:
                    plan.status, plan.reason = sizing.status, sizing.reason
            plans.append(plan)
        ExecutionPlan.objects.bulk_create(plans, batch_size=2000, ignore_conflicts=True)
        BlockedExecution.objects.bulk_create(blocks, batch_size=2000, ignore_conflicts=True)
        if signal.planned_at is None:
            signal.planned_at = now
            signal.save(update_fields=["planned_at"])
        pending = list(
            ExecutionPlan.objects.filter(signal=signal, status=PlanStatus.PENDING)
            .order_by("pk").values_list("pk", "user_id")
        )
        blocked_refs = list(
            ExecutionPlan.objects.filter(signal=signal, status=PlanStatus.BLOCKED)
            .order_by("pk").values_list("pk", "user_id")
        )
    logger.info("trading.signal_planned", signal=signal_id, new_plans=len(plans), pending=len(pending))
    return FanOut(
        signal_id=signal_id, stale=False, planned=len(plans), pending=pending, blocked=blocked_refs,
        symbol=instrument.symbol,
    )


def plan_execute(*, plan_id: int, user_id: int, quote=None) -> str:
    """Execute one plan as its owner. Returns the plan's final status.

    With a fresh quote this is a batch of one: the chunk's code (`batch.paper_plans_execute`), whose rows
    and after-commit effects go through `core.unit_of_work.UnitOfWork`. What the batch cannot do (a venue
    that cannot batch, a fill that needs the portfolio's history replayed, no fresh quote, a batch that
    failed) goes through the general order path (`order_place`), in the owner's tenant context.

    Safe to run any number of times: the plan row is locked and must still be pending, and the order's
    client order id is derived from the plan, in the same transaction as the plan's new status.
    """
    if quote is not None:
        ref = (plan_id, user_id)
        try:
            outcome = batch.paper_plans_execute([ref], quote=quote)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            logger.exception("trading.batch_of_one_failed", plan=plan_id)
        else:
            if ref not in outcome.leftovers:
                [status] = outcome.counts
                return status
    return _plan_place(plan_id=plan_id, user_id=user_id, quote=quote)


def _plan_place(*, plan_id: int, user_id: int, quote) -> str:
    """A plan through the general order path (`order_place`), in its owner's tenant context."""
    with tenant(user_id):
        plan = (
            ExecutionPlan.objects.select_for_update(of=("self",))
            .select_related("bot", "bot__connection", "bot__portfolio", "bot__instrument", "signal", "user")
            .defer("user__password")
            .filter(pk=plan_id)
            .first()
        )
        if plan is None or plan.status != PlanStatus.PENDING:
            return plan.status if plan else "missing"
        bot = plan.bot
        if quote is not None and quote.symbol != bot.instrument.symbol:
            quote = None  # another pair's quote: the exchange reads its own
        lag = (timezone.now() - plan.signal.closed_at).total_seconds()
        if lag > settings.TRADING_SIGNAL_MAX_LAG_SECONDS:
            plan.status, plan.reason = PlanStatus.SKIPPED, f"Not executed: the signal was {int(lag)}s old (stale)."
        elif bot.status != BotStatus.ENABLED:
            plan.status, plan.reason = PlanStatus.SKIPPED, "The bot was paused before it could act."
        else:
            quantity, available = plan.quantity, None
            try:
                if plan.side == OrderSide.BUY:
                    # The balance may have changed since planning: the buy is cut to what pays for it now.
                    available = available_balance(
                        user=plan.user, portfolio=bot.portfolio, connection=bot.connection,
                        currency=bot.instrument.quote,
                    )
                    quantity = adapter_for(bot.connection, portfolio=bot.portfolio).buy_quantity_within(
                        wanted=quantity, price=(quote.ask or quote.price) if quote else plan.reference_price,
                        available=available, precision=bot.instrument.quantity_precision,
                    )
                if quantity <= 0:
                    raise DomainError(INSUFFICIENT_FOR_PLAN)
                with transaction.atomic():
                    order = order_place(
                        user=plan.user, portfolio=bot.portfolio, connection=bot.connection,
                        symbol=bot.instrument.symbol, side=plan.side, type=OrderType.MARKET, quantity=quantity,
                        source=OrderSource.BOT, bot=bot, order_id=plan_order_id(plan.pk), quote=quote,
                        available=available,
                    )
                plan.status, plan.order, plan.quantity = PlanStatus.EXECUTED, order, quantity
            except DomainError as error:
                plan.status, plan.reason = PlanStatus.SKIPPED, str(error)[:300]
                notify(user=plan.user, **plan_skipped_notice(plan=plan, bot_name=bot.name, error=error))
        plan.executed_at = timezone.now()
        plan.save(update_fields=["status", "reason", "order", "quantity", "executed_at"])
        return plan.status


def plans_execute(*, plans: Iterable[tuple[int, int]], symbol: str | None = None) -> dict[str, int]:
    """Execute a chunk of plans, each in its owner's tenant context; one quote read for the chunk.

    Plans on venues that can batch go through the batch executor (one transaction, a few round trips);
    the rest, and all of them if the batch fails for a reason other than a database outage, one by one
    (`plan_execute`: a batch of one where it can be, else the general order path).
    """
    quote = None
    if symbol:
        quote = quote_latest_map(symbols=[symbol]).get(symbol)
        if quote is not None and quote.stale:
            quote = None
    refs = [(int(plan_id), int(user_id)) for plan_id, user_id in plans]
    counts: dict[str, int] = {}
    if quote is not None and refs:
        try:
            outcome = batch.paper_plans_execute(refs, quote=quote)
        except (OperationalError, InterfaceError):
            raise  # the task retries the chunk: nothing of the batch was kept
        except Exception:
            logger.exception("trading.batch_failed", plans=len(refs))
        else:
            counts.update(outcome.counts)
            refs = outcome.leftovers
    for plan_id, user_id in refs:
        status = plan_execute(plan_id=plan_id, user_id=user_id, quote=quote)
        counts[status] = counts.get(status, 0) + 1
    return counts


def blocked_notify(*, plans: Iterable[tuple[int, int]]) -> int:
    """Tell each trader about their blocked executions (once per plan, by dedup key) and send the event.

    In one batch (trading/fanout/batch.py), or one by one if the batch fails for a reason other than an
    outage.
    """
    refs = [(int(plan_id), int(user_id)) for plan_id, user_id in plans]
    if not refs:
        return 0
    try:
        return batch.blocked_notify_batch(refs)
    except (OperationalError, InterfaceError):
        raise
    except Exception:
        logger.exception("trading.blocked_batch_failed", plans=len(refs))
    return sum(_blocked_notify_one(plan_id=plan_id, user_id=user_id) for plan_id, user_id in refs)


def _blocked_notify_one(*, plan_id: int, user_id: int) -> int:
    with tenant(user_id):
        plan = ExecutionPlan.objects.select_related("bot", "user").defer("user__password").filter(pk=plan_id).first()
        if plan is None:
            return 0
        blocked = BlockedExecution.objects.filter(signal_id=plan.signal_id, bot_id=plan.bot_id).first()
        notify(
            user=plan.user, kind=NOTIFY_BLOCKED,
            message=blocked_message(bot_name=plan.bot.name, side=plan.side, reason=plan.reason),
            link=BLOCKED_LINK, dedup_key=f"blocked:{plan.signal_id}:{plan.bot_id}",
        )
        if blocked is not None:
            payloads = [blocked_payload(blocked)]
            transaction.on_commit(lambda: executions_blocked_send(payloads))
    return 1


# --- the sweeper (Celery beat) ------------------------------------------------------------------------------

LOST_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class Sweep:
    expired_plans: int
    requeued_plans: list[tuple[int, int, str]]
    resubmitted_orders: list[tuple[str, int]]


def trading_sweep(*, now=None) -> Sweep:
    """Find work whose queue message was lost (broker down at commit) and what went stale waiting.

    - pending plans of a signal older than TRADING_SIGNAL_MAX_LAG_SECONDS are skipped, never executed late;
    - pending plans older than a minute are handed to executors again (executing twice is harmless);
    - orders still `new` a minute after they were written are submitted again (the submit fetches before it
      places). Only orders for a venue reached after commit are ever committed as `new`: the paper
      exchange places in the transaction that writes the order.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.TRADING_SIGNAL_MAX_LAG_SECONDS)
    with system_context(reason="trading sweep: stale plans, lost fan-out chunks, unsent orders"):
        expired = ExecutionPlan.objects.filter(status=PlanStatus.PENDING, signal__closed_at__lt=cutoff).update(
            status=PlanStatus.SKIPPED, reason="Not executed in time: the signal went stale.", executed_at=now
        )
        lost = list(
            ExecutionPlan.objects.filter(status=PlanStatus.PENDING, created_at__lt=now - LOST_AFTER)
            .order_by("pk")
            .values_list("pk", "user_id", "signal__instrument__symbol")
        )
        unsent = [
            (str(pk), user_id)
            for pk, user_id in Order.objects.filter(
                status=OrderStatus.NEW, updated_at__lt=now - LOST_AFTER
            ).values_list("pk", "user_id")
        ]
    return Sweep(expired_plans=expired, requeued_plans=lost, resubmitted_orders=unsent)
