"""Orders on the paper exchange: validation, the state machine, fills for each type, fills applied once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import DomainError
from core.models import AuditLog
from core.rls import tenant
from portfolios.selectors import cash_balance, position_list, transaction_list
from tests.trading.conftest import set_quote
from trading.exchanges.base import ExchangeFill, ExchangeOrder
from trading.exchanges.paper import resting_orders_crossed
from trading.models import Fill, Order
from trading.orders import services


def place(user, paper, **fields) -> Order:
    portfolio, connection = paper
    values = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "quantity": Decimal("0.1")}
    values.update(fields)
    with tenant(user.pk):
        return services.order_place(user=user, portfolio=portfolio, connection=connection, **values)


def holding(user, portfolio) -> Decimal:
    with tenant(user.pk):
        position = position_list(portfolio=portfolio).first()
        return position.quantity if position else Decimal("0")


def cash(user, portfolio) -> Decimal:
    with tenant(user.pk):
        return cash_balance(portfolio=portfolio, currency="USDT")


# --- validation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"quantity": Decimal("0.123456")}, "quantity", "at most 5 decimal places"),
        ({"type": "limit", "price": Decimal("19000.123")}, "price", "at most 2 decimal places"),
        ({"quantity": Decimal("0.0001")}, "quantity", "needs at least 10 USDT"),
        ({"quantity": Decimal("1")}, "quantity", "Insufficient balance"),
        ({"side": "sell", "quantity": Decimal("0.01")}, "quantity", "Insufficient balance: you can sell at most 0"),
        ({"type": "limit"}, "price", "needs a limit price"),
        ({"type": "stop_market"}, "stop_price", "needs a trigger price"),
        ({"quantity": Decimal("-1")}, "quantity", "greater than zero"),
        ({"symbol": "DOGE/EUR"}, "symbol", "Unknown instrument"),
    ],
)
def test_bad_orders_are_refused_with_a_field_error_and_nothing_written(user_a, paper_a, fields, field, message):
    with pytest.raises(DomainError, match=message) as caught:
        place(user_a, paper_a, **fields)
    assert caught.value.field == field
    with tenant(user_a.pk):
        assert not Order.objects.exists()


def test_open_buy_orders_reserve_cash(user_a, paper_a):
    place(user_a, paper_a, type="limit", price=Decimal("19000"), quantity=Decimal("0.5"))  # ~9,509.5 reserved
    with pytest.raises(DomainError, match="Insufficient balance"):
        place(user_a, paper_a, type="limit", price=Decimal("19000"), quantity=Decimal("0.05"))


# --- paper fills for each order type ----------------------------------------------------------------------


def test_a_market_buy_fills_at_once_with_slippage_and_fee(user_a, paper_a):
    portfolio, _ = paper_a
    order = place(user_a, paper_a)
    # ask 20001 moved 0.05% against the buyer = 20011.0005 -> 20011.01 (tick, rounded against the buyer);
    # fee 0.10% of 2001.101
    assert (order.status, order.average_price, order.fees_paid) == ("filled", Decimal("20011.01"), Decimal("2.001101"))
    assert holding(user_a, portfolio) == Decimal("0.1")
    assert cash(user_a, portfolio) == Decimal("10000") - Decimal("2001.101") - Decimal("2.001101")


def test_a_limit_order_rests_then_fills_at_its_price_when_crossed(user_a, paper_a):
    portfolio, _ = paper_a
    order = place(user_a, paper_a, type="limit", price=Decimal("19500"))
    assert order.status == "open" and holding(user_a, portfolio) == 0
    assert resting_orders_crossed(symbol="BTC/USDT", price=Decimal("19600")) == []
    matches = resting_orders_crossed(symbol="BTC/USDT", price=Decimal("19450"))
    assert matches == [(str(order.pk), user_a.pk)]
    services.order_match_resting(order_id=str(order.pk), user_id=user_a.pk, price=Decimal("19450"))
    with tenant(user_a.pk):
        order.refresh_from_db()
    assert (order.status, order.average_price) == ("filled", Decimal("19500"))
    assert holding(user_a, portfolio) == Decimal("0.1")


def test_a_marketable_limit_order_fills_at_the_better_touch(user_a, paper_a):
    order = place(user_a, paper_a, type="limit", price=Decimal("20500"))
    assert (order.status, order.average_price) == ("filled", Decimal("20001"))


def test_a_stop_market_sell_triggers_below_its_stop(user_a, paper_a):
    portfolio, _ = paper_a
    place(user_a, paper_a, quantity=Decimal("0.2"))
    stop = place(user_a, paper_a, side="sell", type="stop_market", stop_price=Decimal("19000"), quantity=Decimal("0.2"))
    assert stop.status == "open"
    assert resting_orders_crossed(symbol="BTC/USDT", price=Decimal("19100")) == []
    services.order_match_resting(order_id=str(stop.pk), user_id=user_a.pk, price=Decimal("18950"))
    with tenant(user_a.pk):
        stop.refresh_from_db()
    # 18950 moved 0.05% against the seller
    assert (stop.status, stop.average_price) == ("filled", Decimal("18940.52"))
    assert stop.triggered_at is not None and holding(user_a, portfolio) == 0


def test_a_stop_limit_becomes_a_limit_when_triggered(user_a, paper_a):
    order = place(user_a, paper_a, type="stop_limit", stop_price=Decimal("21000"), price=Decimal("21100"))
    services.order_match_resting(order_id=str(order.pk), user_id=user_a.pk, price=Decimal("21000"))
    with tenant(user_a.pk):
        order.refresh_from_db()
    assert (order.status, order.average_price) == ("filled", Decimal("21000"))
    gap = place(user_a, paper_a, type="stop_limit", stop_price=Decimal("21000"), price=Decimal("21050"),
                quantity=Decimal("0.01"))
    services.order_match_resting(order_id=str(gap.pk), user_id=user_a.pk, price=Decimal("21200"))  # gapped past
    with tenant(user_a.pk):
        gap.refresh_from_db()
    assert gap.status == "open" and gap.triggered_at is not None, "triggered, now resting as a limit at 21050"
    assert resting_orders_crossed(symbol="BTC/USDT", price=Decimal("21040")) == [(str(gap.pk), user_a.pk)]


def test_a_take_profit_sell_fires_when_the_price_rises_to_it(user_a, paper_a):
    place(user_a, paper_a, quantity=Decimal("0.1"))
    tp = place(user_a, paper_a, side="sell", type="take_profit", stop_price=Decimal("22000"))
    assert resting_orders_crossed(symbol="BTC/USDT", price=Decimal("21900")) == []
    services.order_match_resting(order_id=str(tp.pk), user_id=user_a.pk, price=Decimal("22010"))
    with tenant(user_a.pk):
        tp.refresh_from_db()
    assert tp.status == "filled" and tp.average_price == Decimal("21998.99")


def test_a_stale_price_refuses_market_orders(user_a, paper_a):
    set_quote("BTC/USDT", "20000", age_seconds=3600)
    with pytest.raises(DomainError, match="stale"):
        place(user_a, paper_a)


# --- the state machine and fills applied once ---------------------------------------------------------------


def test_illegal_transitions_are_refused(user_a, paper_a):
    order = place(user_a, paper_a)
    assert order.status == "filled"
    with pytest.raises(services.IllegalOrderTransition, match="already filled"), tenant(user_a.pk):
        services.order_cancel(user=user_a, order=order)
    with pytest.raises(services.IllegalOrderTransition, match="cannot become open"):
        services.order_transition(order, "open")


def test_cancel_moves_an_open_order_to_cancelled_and_audits_it(user_a, paper_a):
    order = place(user_a, paper_a, type="limit", price=Decimal("15000"))
    with tenant(user_a.pk):
        services.order_cancel(user=user_a, order=order)
        order.refresh_from_db()
        actions = set(AuditLog.objects.filter(target_id=str(order.pk)).values_list("action", flat=True))
    assert order.status == "cancelled" and order.closed_at is not None
    assert actions == {"trading.order_placed", "trading.order_cancelled"}
    assert resting_orders_crossed(symbol="BTC/USDT", price=Decimal("14000")) == []


def test_a_fill_reported_twice_moves_the_portfolio_once(user_a, paper_a):
    portfolio, _ = paper_a
    order = place(user_a, paper_a, type="limit", price=Decimal("19000"))
    from django.utils import timezone

    fill = ExchangeFill(fill_id="venue:77", quantity=Decimal("0.04"), price=Decimal("19000"), fee=Decimal("0.76"),
                        fee_currency="USDT", executed_at=timezone.now())
    report = ExchangeOrder(client_order_id=str(order.pk), exchange_order_id="x1", status="open",
                           filled_quantity=Decimal("0.04"), average_price=Decimal("19000"), fills=(fill,))
    with tenant(user_a.pk):
        services.order_apply_exchange(order=order, update=report)
        services.order_apply_exchange(order=Order.objects.get(pk=order.pk), update=report)
        order.refresh_from_db()
        assert Fill.objects.filter(order=order).count() == 1
        assert transaction_list(portfolio=portfolio, kind="buy").count() == 1
    assert order.status == "partially_filled" and order.filled_quantity == Decimal("0.04")
    assert holding(user_a, portfolio) == Decimal("0.04")


def test_a_cumulative_report_without_trades_is_recorded_once(user_a, paper_a):
    portfolio, _ = paper_a
    order = place(user_a, paper_a, type="limit", price=Decimal("19000"))
    report = ExchangeOrder(client_order_id=str(order.pk), exchange_order_id="x2", status="filled",
                           filled_quantity=Decimal("0.1"), average_price=Decimal("19000"))
    with tenant(user_a.pk):
        services.order_apply_exchange(order=order, update=report)
        services.order_apply_exchange(order=Order.objects.get(pk=order.pk), update=report)
        order.refresh_from_db()
        assert transaction_list(portfolio=portfolio, kind="buy").count() == 1
    assert order.status == "filled" and holding(user_a, portfolio) == Decimal("0.1")


def test_a_retried_placement_with_the_same_client_order_id_creates_one_order(user_a, paper_a):
    import uuid

    client_order_id = uuid.uuid4()
    first = place(user_a, paper_a, order_id=client_order_id)
    second = place(user_a, paper_a, order_id=client_order_id)
    assert first.pk == second.pk
    with tenant(user_a.pk):
        assert Order.objects.count() == 1
        assert Fill.objects.count() == 1
