"""Orders on the paper exchange: validation, the state machine, fills for each type, fills applied once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from core.errors import DomainError
from core.models import AuditLog
from core.rls import tenant
from portfolios.selectors import cash_balance, position_list, transaction_list
from tests.trading.conftest import set_quote
from trading.choices import ORDER_TRANSITIONS, TERMINAL_ORDER_STATUSES, OrderStatus
from trading.exchanges.base import ExchangeFill, ExchangeOrder
from trading.exchanges.paper import resting_orders_crossed
from trading.models import Fill, Order
from trading.orders import services
from trading.orders.validation import available_balance


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


# --- the whole state machine (choices.ORDER_TRANSITIONS) -----------------------------------------------------

# docs/trading.md, "Orders": the only legal moves. Written out here so that a change to the table is a
# change to this test too, not silently followed by the parametrization below.
DOCUMENTED_TRANSITIONS = {
    "new": {"open", "partially_filled", "filled", "cancelled", "rejected", "expired"},
    "open": {"partially_filled", "filled", "cancelled", "expired"},
    "partially_filled": {"partially_filled", "filled", "cancelled", "expired"},
    "filled": set(),
    "cancelled": set(),
    "rejected": set(),
    "expired": set(),
}
STATUSES = [status.value for status in OrderStatus]
ALLOWED = [(before, after) for before in STATUSES for after in STATUSES if after in ORDER_TRANSITIONS[before]]
REFUSED = [
    (before, after) for before in STATUSES for after in STATUSES
    if after not in ORDER_TRANSITIONS[before] and after != before
]
REPEATED = [(status, status) for status in STATUSES if status not in ORDER_TRANSITIONS[status]]


def test_the_state_machine_is_the_documented_one():
    assert {before: set(after) for before, after in ORDER_TRANSITIONS.items()} == DOCUMENTED_TRANSITIONS
    assert set(ORDER_TRANSITIONS) == set(STATUSES)
    assert len(ALLOWED) + len(REFUSED) + len(REPEATED) == len(STATUSES) ** 2


def _stored_order_in(user, paper, status: str) -> Order:
    """A resting limit buy of 0.1 BTC, moved straight to `status` in the database (as a venue report could)."""
    order = place(user, paper, type="limit", price=Decimal("15000"))
    fields = {"status": status, "closed_at": timezone.now() if status in TERMINAL_ORDER_STATUSES else None}
    if status == "filled":
        fields.update(filled_quantity=Decimal("0.1"), average_price=Decimal("15000"))
    elif status == "partially_filled":
        fields.update(filled_quantity=Decimal("0.04"), average_price=Decimal("15000"))
    with tenant(user.pk):
        Order.objects.filter(pk=order.pk).update(**fields)
        return Order.objects.get(pk=order.pk)


@pytest.mark.parametrize(("before", "after"), ALLOWED)
def test_every_allowed_transition_moves_the_stored_order(user_a, paper_a, before, after):
    order = _stored_order_in(user_a, paper_a, before)
    with tenant(user_a.pk):
        services.order_transition(order, after, reason="Reported by the venue.")
        order.save()
        order.refresh_from_db()
    assert order.status == after
    assert order.status_reason == "Reported by the venue."
    assert (order.closed_at is not None) == (after in TERMINAL_ORDER_STATUSES)


@pytest.mark.parametrize(("before", "after"), REFUSED)
def test_every_other_transition_is_refused_and_changes_nothing(user_a, paper_a, before, after):
    order = _stored_order_in(user_a, paper_a, before)
    seen = (order.status, order.closed_at, order.status_reason)
    message = f"cannot become {OrderStatus(after).label.lower()}"
    with pytest.raises(services.IllegalOrderTransition, match=message):
        services.order_transition(order, after, reason="Reported by the venue.")
    assert (order.status, order.closed_at, order.status_reason) == seen
    with tenant(user_a.pk):
        order.refresh_from_db()
    assert (order.status, order.closed_at, order.status_reason) == seen


@pytest.mark.parametrize(("before", "after"), REPEATED)
def test_the_same_state_reported_again_changes_nothing(user_a, paper_a, before, after):
    order = _stored_order_in(user_a, paper_a, before)
    seen = (order.status, order.closed_at, order.status_reason)
    services.order_transition(order, after, reason="Reported again.")
    assert (order.status, order.closed_at, order.status_reason) == seen


@pytest.mark.parametrize("status", STATUSES)
def test_a_trader_can_cancel_exactly_the_orders_the_table_lets_become_cancelled(user_a, paper_a, status):
    portfolio, _ = paper_a
    order = _stored_order_in(user_a, paper_a, status)
    cash_before = cash(user_a, portfolio)
    if "cancelled" in ORDER_TRANSITIONS[status]:
        with tenant(user_a.pk):
            services.order_cancel(user=user_a, order=order)
            order.refresh_from_db()
        assert order.status == "cancelled" and order.closed_at is not None
    else:
        with pytest.raises(services.IllegalOrderTransition, match="This order is already"), tenant(user_a.pk):
            services.order_cancel(user=user_a, order=order)
        with tenant(user_a.pk):
            order.refresh_from_db()
        assert order.status == status
    assert cash(user_a, portfolio) == cash_before


FINAL_STATUSES = sorted(TERMINAL_ORDER_STATUSES)
VENUE_REPORTS = ["open", "partially_filled", "filled", "cancelled", "rejected", "expired"]


@pytest.mark.parametrize(
    ("before", "reported"),
    [(before, reported) for before in FINAL_STATUSES for reported in VENUE_REPORTS if reported != before],
)
def test_a_venue_report_cannot_reopen_or_refill_a_final_order(user_a, paper_a, before, reported):
    """A report that would move a final order anywhere is refused whole: no fill, no cash, no position."""
    portfolio, _ = paper_a
    order = _stored_order_in(user_a, paper_a, before)
    cash_before, held_before = cash(user_a, portfolio), holding(user_a, portfolio)
    filled = {"open": Decimal("0"), "partially_filled": Decimal("0.02"), "filled": Decimal("0.1")}.get(
        reported, Decimal("0")
    )
    fills = (
        (ExchangeFill(fill_id="venue:late", quantity=filled, price=Decimal("15000"), fee=Decimal("0"),
                      fee_currency="USDT", executed_at=timezone.now()),)
        if filled and before != "filled" else ()
    )
    report = ExchangeOrder(client_order_id=str(order.pk), exchange_order_id="x9", status=reported,
                           filled_quantity=filled, average_price=Decimal("15000") if filled else None, fills=fills)
    with pytest.raises(services.IllegalOrderTransition), tenant(user_a.pk):
        services.order_apply_exchange(order=order, update=report)
    with tenant(user_a.pk):
        stored = Order.objects.get(pk=order.pk)
        assert not Fill.objects.exists()
    assert stored.status == before
    assert (cash(user_a, portfolio), holding(user_a, portfolio)) == (cash_before, held_before)


# --- partial fills, cancels and late fills ---------------------------------------------------------------------


def _partial(order: Order, *, fill_id: str, quantity: str, status: str = "open") -> ExchangeOrder:
    fill = ExchangeFill(fill_id=fill_id, quantity=Decimal(quantity), price=Decimal("19000"),
                        fee=Decimal(quantity) * Decimal("19"), fee_currency="USDT", executed_at=timezone.now())
    return ExchangeOrder(client_order_id=str(order.pk), exchange_order_id="x7", status=status,
                         filled_quantity=Decimal(quantity), average_price=Decimal("19000"), fills=(fill,))


def test_a_partly_filled_order_cancelled_keeps_its_fill_and_releases_the_rest(user_a, paper_a):
    portfolio, connection = paper_a
    order = place(user_a, paper_a, type="limit", price=Decimal("19000"))  # 0.1 BTC
    with tenant(user_a.pk):
        services.order_apply_exchange(order=order, update=_partial(order, fill_id="venue:1", quantity="0.04"))
        order.refresh_from_db()
        reserved_while_open = cash(user_a, portfolio) - available_balance(
            user=user_a, portfolio=portfolio, connection=connection, currency="USDT"
        )
    assert order.status == "partially_filled" and order.filled_quantity == Decimal("0.04")
    assert reserved_while_open == Decimal("0.06") * Decimal("19000") * (1 + connection.taker_fee)

    with tenant(user_a.pk):
        services.order_cancel(user=user_a, order=order)
        order.refresh_from_db()
        available = available_balance(user=user_a, portfolio=portfolio, connection=connection, currency="USDT")
        audit = AuditLog.objects.get(action="trading.order_cancelled", target_id=str(order.pk))
    paid = Decimal("0.04") * Decimal("19000") + Decimal("0.76")
    assert (order.status, order.filled_quantity, order.closed_at is not None) == ("cancelled", Decimal("0.04"), True)
    assert holding(user_a, portfolio) == Decimal("0.04")
    assert cash(user_a, portfolio) == Decimal("10000") - paid
    assert available == cash(user_a, portfolio), "the cancelled rest holds nothing back"
    assert audit.before == {"status": "partially_filled"} and audit.after["status"] == "cancelled"


def test_a_cancelled_resting_order_never_fills_when_the_price_comes_through_later(user_a, paper_a):
    portfolio, _ = paper_a
    order = place(user_a, paper_a, type="limit", price=Decimal("19000"))
    with tenant(user_a.pk):
        services.order_apply_exchange(order=order, update=_partial(order, fill_id="venue:1", quantity="0.04"))
        services.order_cancel(user=user_a, order=Order.objects.get(pk=order.pk))
    cash_after_cancel = cash(user_a, portfolio)
    assert resting_orders_crossed(symbol="BTC/USDT", price=Decimal("18000")) == []
    assert services.order_match_resting(order_id=str(order.pk), user_id=user_a.pk, price=Decimal("18000")) is None
    with tenant(user_a.pk):
        order.refresh_from_db()
        assert Fill.objects.filter(order=order).count() == 1
    assert (order.status, order.filled_quantity) == ("cancelled", Decimal("0.04"))
    assert holding(user_a, portfolio) == Decimal("0.04") and cash(user_a, portfolio) == cash_after_cancel


def test_a_fill_the_venue_reports_after_the_cancel_is_recorded_once_and_the_order_stays_cancelled(user_a, paper_a):
    """The venue filled more before the cancel took effect: the money moved there, so it moves here, once."""
    portfolio, _ = paper_a
    order = place(user_a, paper_a, type="limit", price=Decimal("19000"))
    with tenant(user_a.pk):
        services.order_apply_exchange(order=order, update=_partial(order, fill_id="venue:1", quantity="0.04"))
        services.order_cancel(user=user_a, order=Order.objects.get(pk=order.pk))
        closed_at = Order.objects.get(pk=order.pk).closed_at
        late = ExchangeOrder(
            client_order_id=str(order.pk), exchange_order_id="x7", status="cancelled",
            filled_quantity=Decimal("0.06"), average_price=Decimal("19000"),
            fills=(*_partial(order, fill_id="venue:1", quantity="0.04").fills,
                   *_partial(order, fill_id="venue:2", quantity="0.02").fills),
        )
        for _ in range(2):
            services.order_apply_exchange(order=Order.objects.get(pk=order.pk), update=late)
        order.refresh_from_db()
        assert sorted(Fill.objects.filter(order=order).values_list("fill_id", flat=True)) == ["venue:1", "venue:2"]
    assert (order.status, order.filled_quantity, order.closed_at) == ("cancelled", Decimal("0.06"), closed_at)
    assert holding(user_a, portfolio) == Decimal("0.06")
    assert cash(user_a, portfolio) == Decimal("10000") - Decimal("0.06") * Decimal("19000") - Decimal("0.06") * 19
