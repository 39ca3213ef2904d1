"""A bot fan-out for the drills that restart Redis or PostgreSQL: N paper traders with one DCA bot each
(bulk inserts, as bench/fanout.py seeds them), a signal, and the counts that show a plan lost or run twice.

Each drill run tags its bots with a `params_key` of its own, so its signals reach only its bots (the drills
share one database across runs)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

DEPOSIT = Decimal("10000")


def seed_bots(count: int) -> str:
    from django.utils import timezone

    from accounts.models import User
    from core.rls import system_context
    from marketdata.models import Instrument
    from portfolios.choices import PortfolioKind, TransactionKind, TransactionSource
    from portfolios.models import CashBalance, Portfolio, Transaction
    from trading.models import Bot, ExchangeConnection

    tag = f"drill-{uuid.uuid4().hex[:10]}"
    now = timezone.now()
    with system_context(reason="drill: seed traders with bots"):
        instrument = Instrument.objects.get(symbol="BTC/USDT")
        users = User.objects.bulk_create(
            [User(email=f"{tag}-{i}@drill.local", display_name=f"Drill {i}", password="!")  # noqa: S106 - unusable
             for i in range(count)]
        )
        portfolios = Portfolio.objects.bulk_create(
            [Portfolio(user=u, name="Paper", base_currency="USDT", kind=PortfolioKind.PAPER) for u in users]
        )
        Transaction.objects.bulk_create([
            Transaction(user_id=p.user_id, portfolio=p, kind=TransactionKind.DEPOSIT, currency="USDT",
                        quantity=DEPOSIT, executed_at=now - timedelta(days=1), external_id="drill-deposit",
                        source=TransactionSource.DEMO, flow_amount=DEPOSIT, flow_currency="USDT")
            for p in portfolios
        ])
        CashBalance.objects.bulk_create(
            [CashBalance(user_id=p.user_id, portfolio=p, currency="USDT", amount=DEPOSIT) for p in portfolios]
        )
        paper = ExchangeConnection.objects.bulk_create([
            ExchangeConnection(user=u, label="Paper", venue="paper", maker_fee=Decimal("0.001"),
                               taker_fee=Decimal("0.001"), validated_at=now)
            for u in users
        ])
        Bot.objects.bulk_create([
            Bot(user_id=p.user_id, name="DCA", portfolio=p, connection=c, instrument=instrument, strategy="dca",
                params={"every": 1}, params_key=tag, timeframe="1m", allocation=Decimal("100"),
                max_position=Decimal("1"), daily_loss_limit=Decimal("50"))
            for p, c in zip(portfolios, paper, strict=True)
        ])
    return tag


def signal_send(tag: str, minutes_ago: int) -> int:
    """A buy signal for the tagged bots at the latest quote, and its fan-out task sent to the workers."""
    from django.utils import timezone

    from core.rls import system_context
    from marketdata.models import Instrument, Quote
    from trading.models import Signal
    from trading.tasks import signal_fan_out_task

    now = timezone.now()
    with system_context(reason="drill: the signal engine decides"):
        instrument = Instrument.objects.get(symbol="BTC/USDT")
        price = Quote.objects.get(instrument=instrument).price
        signal = Signal.objects.create(
            instrument=instrument, strategy="dca", params={"every": 1}, params_key=tag, timeframe="1m",
            candle_open_time=now.replace(second=0, microsecond=0) - timedelta(minutes=minutes_ago), closed_at=now,
            action="buy", price=price, regime="bullish", reason="drill signal", status="planned",
        )
    signal_fan_out_task.delay(signal.pk)
    return signal.pk


def counts(tag: str, signal_ids: list[int]) -> dict:
    from django.db.models import Count

    from core.rls import system_context
    from portfolios.models import Transaction
    from trading.models import ExecutionPlan, Fill, Order

    with system_context(reason="drill: lost or doubled"):
        plans = ExecutionPlan.objects.filter(signal_id__in=signal_ids)
        by_status = {row["status"]: row["n"] for row in plans.values("status").annotate(n=Count("id"))}
        users = list(plans.values_list("user_id", flat=True).distinct())
        bot_orders = Order.objects.filter(user_id__in=users, source="bot")
        # Orders the running platform's bots placed for signals of their own (the feed keeps them trading
        # during a drill) are not the drill's: only those of its signals' plans, or of no plan, can be doubles.
        others = bot_orders.filter(plan__isnull=False).exclude(plan__signal_id__in=signal_ids).count()
        orders = bot_orders.count() - others
        fills = Fill.objects.filter(order__user_id__in=users)
        txns = Transaction.objects.filter(user_id__in=users, external_id__startswith="paper:")
        return {
            "plans": sum(by_status.values()),
            "plans_by_status": by_status,
            "bot_orders": orders,
            "bot_orders_for_other_signals": others,
            "duplicate_orders": orders - by_status.get("executed", 0),
            "duplicate_fills": fills.count() - fills.values("order_id").distinct().count(),
            "duplicate_portfolio_transactions": txns.count()
            - txns.values("portfolio_id", "external_id").distinct().count(),
        }
