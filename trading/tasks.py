"""Celery tasks: thin, idempotent wrappers that take ids and call services.

Tasks import services, never the other way: a service that starts a task after commit names it
(core.jobs.task_enqueue).

Every task here is safe to run twice (acks_late + reject_on_worker_lost are on in settings, so a task
whose worker died is delivered again): plans are unique per (signal, bot), a plan executes only while
pending under a row lock, and an order's client order id is derived from its plan. A task that fails on
a database outage (no connection slot, connection dropped) is retried with backoff rather than lost; the
beat sweeper (`trading.sweep`) catches anything that still slips through.
"""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from core.rls import tenant
from trading.decisions import services as decision_services
from trading.exchanges.base import ExchangeUnavailable, OrderStatusUnknown
from trading.fanout import services as fanout_services
from trading.orders import services as order_services
from trading.tracker import services as tracker_services

# Transient database failures: the fan-out tasks retry them (they are idempotent).
DATABASE_OUTAGES = (OperationalError, InterfaceError)
RETRY = {"autoretry_for": DATABASE_OUTAGES, "retry_backoff": 1, "retry_backoff_max": 30, "max_retries": 20}


@shared_task(name="trading.signals_compute", **RETRY)
def signals_compute_task(symbol: str, candle_open_time: str, published_at: str | None = None) -> int:
    signals = decision_services.signals_compute(
        symbol=symbol,
        candle_open_time=datetime.fromisoformat(candle_open_time),
        published_at=datetime.fromisoformat(published_at) if published_at else None,
    )
    return len(signals)


@shared_task(name="trading.signal_fan_out", **RETRY)
def signal_fan_out_task(signal_id: int) -> dict:
    """Plan (cross-tenant, in bulk), then hand the plans to executors in chunks."""
    fan_out = fanout_services.signal_plan(signal_id=signal_id)
    if fan_out.stale:
        return {"stale": True}
    symbol = fan_out.symbol
    size = settings.TRADING_FANOUT_CHUNK_SIZE
    for start in range(0, len(fan_out.pending), size):
        plans_execute_task.delay([list(ref) for ref in fan_out.pending[start : start + size]], symbol)
    for start in range(0, len(fan_out.blocked), size):
        blocked_notify_task.delay([list(ref) for ref in fan_out.blocked[start : start + size]])
    return {"planned": fan_out.planned, "pending": len(fan_out.pending), "blocked": len(fan_out.blocked)}


@shared_task(name="trading.plans_execute", **RETRY)
def plans_execute_task(plans: list[list[int]], symbol: str | None = None) -> dict:
    return fanout_services.plans_execute(plans=[(plan_id, user_id) for plan_id, user_id in plans], symbol=symbol)


@shared_task(name="trading.blocked_notify", **RETRY)
def blocked_notify_task(plans: list[list[int]]) -> int:
    return fanout_services.blocked_notify(plans=[(plan_id, user_id) for plan_id, user_id in plans])


@shared_task(
    name="trading.order_submit",
    autoretry_for=(ExchangeUnavailable, OrderStatusUnknown, *DATABASE_OUTAGES),
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=8,
)
def order_submit_task(order_id: str, user_id: int) -> str:
    with tenant(user_id):
        return order_services.order_submit(order_id=order_id).status


@shared_task(name="trading.sweep")
def trading_sweep_task() -> dict:
    sweep = fanout_services.trading_sweep()
    by_symbol: dict[str, list[list[int]]] = {}
    for plan_id, user_id, symbol in sweep.requeued_plans:
        by_symbol.setdefault(symbol, []).append([plan_id, user_id])
    size = settings.TRADING_FANOUT_CHUNK_SIZE
    for symbol, refs in by_symbol.items():
        for start in range(0, len(refs), size):
            plans_execute_task.delay(refs[start : start + size], symbol)
    for order_id, user_id in sweep.resubmitted_orders:
        order_submit_task.delay(order_id, user_id)
    return {
        "expired_plans": sweep.expired_plans,
        "requeued_plans": len(sweep.requeued_plans),
        "resubmitted_orders": len(sweep.resubmitted_orders),
    }


@shared_task(name="trading.replay_run")
def replay_run_task(run_id: int, user_id: int) -> str:
    """A strategy-tracker simulation; a redelivered message finds the run claimed and does nothing."""
    return tracker_services.replay_execute(run_id=run_id, user_id=user_id)
