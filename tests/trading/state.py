"""What a trader can see after their bots executed: the whole state, and the check that a buy counted once.

A fan-out chunk may be delivered twice, run by two workers at once, or handed back by the sweeper. Counting
orders or fills proves little (their unique constraints fix the counts); what must not move twice is the
trader's cash, their position and lots, and the bot's own position, cost and P&L.
"""

from __future__ import annotations

from decimal import Decimal

from core.models import AuditLog, Notification, NotificationDelivery
from core.rls import tenant
from portfolios.models import CashBalance, Lot, Position, Transaction
from trading.fanout.plans import plan_order_id
from trading.models import Bot, ExecutionPlan, Fill, Order
from trading.orders.services import NOTIFY_FILLED


def trader_state(user) -> dict:
    """Everything a plan's execution writes for `user`, without ids, times and the user's own email."""
    with tenant(user.pk):
        orders = list(Order.objects.order_by("created_at"))
        return {
            "orders": [
                (o.side, o.type, o.source, o.quantity, o.status, o.filled_quantity, o.average_price, o.fees_paid,
                 o.exchange_order_id == f"paper-{o.pk}", o.closed_at is not None, o.status_reason)
                for o in orders
            ],
            "fills": [
                (f.fill_id == f"paper:{f.order_id}", f.quantity, f.price, f.fee, f.fee_currency)
                for f in Fill.objects.order_by("executed_at")
            ],
            "transactions": [
                (t.kind, t.quantity, t.price, t.fee, t.fee_currency, t.realized_pnl, t.flow_amount, t.flow_currency,
                 t.funding, t.fee_funding, t.source, t.note.startswith("Order "), t.external_id)
                if t.kind == "deposit" else
                (t.kind, t.quantity, t.price, t.fee, t.fee_currency, t.realized_pnl, t.flow_amount, t.flow_currency,
                 t.funding, t.fee_funding, t.source, t.note.startswith("Order "), t.external_id.startswith("paper:"))
                for t in Transaction.objects.order_by("executed_at", "id")
            ],
            "positions": [
                (p.quantity, p.cost_basis, p.realized_pnl, p.fees_paid, p.last_price, p.opened_at is not None)
                for p in Position.objects.all()
            ],
            "lots": [
                (lot.quantity, lot.quantity_open, lot.cost_open, lot.closed_at is not None)
                for lot in Lot.objects.order_by("opened_at", "id")
            ],
            "cash": sorted(CashBalance.objects.values_list("currency", "amount")),
            "bots": [
                (b.position_quantity, b.position_cost, b.realized_pnl, b.realized_pnl_day, b.pnl_day)
                for b in Bot.objects.all()
            ],
            "plans": [
                (p.side, p.status, p.reason, p.quantity, p.order_id == (plan_order_id(p.pk) if p.order_id else None),
                 p.executed_at is not None)
                for p in ExecutionPlan.objects.order_by("created_at", "id")
            ],
            "notifications": [
                (n.kind, n.message, n.link.split("/")[2] if n.link.count("/") > 3 else n.link, n.dedup_key.split(":")[0])
                for n in Notification.objects.order_by("created_at", "id")
            ],
            "deliveries": sorted(NotificationDelivery.objects.values_list("channel", "status", "attempts")),
            "audit": sorted(
                (a.action, a.actor_label.replace(user.email, "<owner>"), a.target_type, _summary(a.after))
                for a in AuditLog.objects.exclude(action__in=["trading.connection_created", "portfolio.created"])
            ),
        }


def _summary(after: dict | None) -> tuple:
    ids = {"id", "portfolio", "external_id", "executed_at"}
    return tuple(sorted((key, value) for key, value in (after or {}).items() if key not in ids))


def assert_bought_once(user, *, quantity: Decimal, deposit: Decimal = Decimal("10000"), symbol: str = "BTC/USDT") -> None:
    """`user`'s one bot bought `quantity` exactly once: one filled order, cash down by its cost and fee once,
    the portfolio's position and its one lot holding it once, and the bot's own position and cost once."""
    with tenant(user.pk):
        [order] = Order.objects.all()
        [fill] = Fill.objects.all()
        [plan] = ExecutionPlan.objects.all()
        [bot] = Bot.objects.all()
        [position] = Position.objects.filter(instrument__symbol=symbol)
        [lot] = Lot.objects.all()
        cash = dict(CashBalance.objects.values_list("currency", "amount"))
        buys = list(Transaction.objects.filter(kind="buy").values_list("quantity", flat=True))
        filled_notices = Notification.objects.filter(kind=NOTIFY_FILLED).count()
    assert (order.side, order.status, order.quantity, order.filled_quantity) == ("buy", "filled", quantity, quantity)
    assert (fill.order_id, fill.quantity) == (order.pk, quantity)
    cost = fill.quantity * fill.price
    assert cash == {"USDT": deposit - cost - fill.fee}, "the cash paid for one buy, once"
    assert buys == [quantity]
    assert position.quantity == quantity and position.cost_basis == cost + fill.fee
    assert (lot.quantity, lot.quantity_open) == (quantity, quantity)
    assert (bot.position_quantity, bot.position_cost) == (quantity, cost + fill.fee), "the bot's own position, once"
    assert (plan.status, plan.order_id, plan.quantity) == ("executed", order.pk, quantity)
    assert filled_notices == 1
