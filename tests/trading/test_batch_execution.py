"""The batch executor (trading.fanout.batch) against the single path (services.plan_execute).

The batch exists for speed only, so the proof is that it writes exactly what the single path writes, for
each outcome a plan can have, and that it falls back to the single path (or is retried) whenever it cannot
finish, without executing anything twice.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import OperationalError
from django.utils import timezone

from core.models import Notification
from core.rls import system_context, tenant
from marketdata.selectors import quote_latest_map
from portfolios.models import CashBalance, Position, Transaction
from portfolios.services import transaction_record
from tests.trading.conftest import make_bot, make_signal, paper_setup, set_quote
from tests.trading.state import assert_bought_once, trader_state
from trading.fanout import batch as execution
from trading.fanout import services
from trading.models import Bot, ExecutionPlan, Fill, Order

SYMBOL = "BTC/USDT"


def _quote():
    return quote_latest_map(symbols=[SYMBOL])[SYMBOL]


def _execute(path: str, refs: list[tuple[int, int]]) -> None:
    if path == "single":
        for plan_id, user_id in refs:
            services.plan_execute(plan_id=plan_id, user_id=user_id, quote=_quote())
    else:
        outcome = execution.paper_plans_execute(refs, quote=_quote())
        assert outcome.leftovers == [], "the batch handled every plan itself"


def _signal_refs(signal) -> dict[int, tuple[int, int]]:
    fan_out = services.signal_plan(signal_id=signal.pk)
    return {user_id: (plan_id, user_id) for plan_id, user_id in fan_out.pending}


@pytest.mark.parametrize("scenario", ["buy", "buy_then_sell", "too_little_cash", "paused"])
def test_the_batch_writes_exactly_what_the_single_path_writes(
    scenario, user_a, user_b, btc_quote, django_capture_on_commit_callbacks
):
    cash = "5" if scenario == "too_little_cash" else "10000"
    single = (user_a, make_bot(user_a, paper_setup(user_a, cash=cash)))
    batch = (user_b, make_bot(user_b, paper_setup(user_b, cash=cash)))
    refs = _signal_refs(make_signal())
    if scenario == "paused":
        with system_context(reason="test: pause both bots after planning"):
            Bot.objects.update(status="paused")
    with django_capture_on_commit_callbacks(execute=True):
        _execute("single", [refs[single[0].pk]])
        _execute("batch", [refs[batch[0].pk]])
    if scenario == "buy_then_sell":
        set_quote(SYMBOL, "21000", bid="20999", ask="21001")
        refs = _signal_refs(make_signal(action="sell", candle_open_time=timezone.now() - timedelta(hours=3)))
        with django_capture_on_commit_callbacks(execute=True):
            _execute("single", [refs[single[0].pk]])
            _execute("batch", [refs[batch[0].pk]])

    expected, got = trader_state(single[0]), trader_state(batch[0])
    assert got == expected
    outcome = {"buy": "executed", "buy_then_sell": "executed", "too_little_cash": "skipped", "paused": "skipped"}
    assert {plan[1] for plan in got["plans"]} == {outcome[scenario]}
    if scenario == "buy_then_sell":
        assert [order[0] for order in got["orders"]] == ["buy", "sell"]
        assert got["bots"][0][2] > 0, "the sell at 21,000 realized the gain of the buy at 20,000"
    if scenario == "too_little_cash":
        assert got["notifications"][0][0] == "trading.execution_blocked"
        assert "needs at least" in got["notifications"][0][1]


def test_a_chunk_is_one_batch_and_a_redelivery_does_nothing(user_a, user_b, btc_quote):
    for user in (user_a, user_b):
        make_bot(user, paper_setup(user))
    refs = list(_signal_refs(make_signal()).values())
    first = execution.paper_plans_execute(refs, quote=_quote())
    after_one = [trader_state(user) for user in (user_a, user_b)]
    again = execution.paper_plans_execute(refs, quote=_quote())
    assert (first.counts, first.leftovers) == ({"executed": 2}, [])
    assert (again.counts, again.leftovers) == ({"executed": 2}, []), "executed plans are reported, not redone"
    with system_context(reason="test: count across tenants"):
        assert (Order.objects.count(), Fill.objects.count()) == (2, 2)
        assert Transaction.objects.filter(kind="buy").count() == 2
    assert [trader_state(user) for user in (user_a, user_b)] == after_one, "the redelivery changed nobody's state"
    for user in (user_a, user_b):
        assert_bought_once(user, quantity=Decimal("0.005"))


@pytest.mark.parametrize(("first", "again"), [("batch", "single"), ("single", "batch"), ("single", "single")])
def test_a_plan_executed_on_one_path_is_not_executed_again_on_the_other(first, again, user_a, user_b, btc_quote):
    """The sweeper's requeue and the batch's fallback run plans through the single path that a batch may
    already have executed (and the other way round): each trader still pays for one buy."""
    for user in (user_a, user_b):
        make_bot(user, paper_setup(user))
    refs = list(_signal_refs(make_signal()).values())
    _execute(first, refs)
    after_one = [trader_state(user) for user in (user_a, user_b)]
    if again == "single":
        assert [services.plan_execute(plan_id=p, user_id=u, quote=_quote()) for p, u in refs] == ["executed"] * 2
    else:
        outcome = execution.paper_plans_execute(refs, quote=_quote())
        assert (outcome.counts, outcome.leftovers) == ({"executed": 2}, [])
    assert [trader_state(user) for user in (user_a, user_b)] == after_one
    for user in (user_a, user_b):
        assert_bought_once(user, quantity=Decimal("0.005"))


def test_a_fill_dated_before_the_portfolios_latest_transaction_takes_the_single_path(user_a, btc_quote):
    portfolio, connection = paper_setup(user_a)
    make_bot(user_a, (portfolio, connection))
    with tenant(user_a.pk):  # a deposit dated a minute ahead: the fill would have to be replayed before it
        transaction_record(
            user=user_a, portfolio=portfolio, kind="deposit", quantity=Decimal("5"), currency="USDT",
            executed_at=timezone.now() + timedelta(minutes=1),
        )
    refs = list(_signal_refs(make_signal()).values())
    outcome = execution.paper_plans_execute(refs, quote=_quote())
    assert outcome.leftovers == refs and not outcome.counts
    assert services.plans_execute(plans=refs, symbol=SYMBOL) == {"executed": 1}
    with tenant(user_a.pk):
        assert Order.objects.get().status == "filled"


def test_a_batch_that_fails_keeps_nothing_and_every_plan_runs_once_on_the_single_path(
    user_a, user_b, btc_quote, monkeypatch, caplog
):
    for user in (user_a, user_b):
        make_bot(user, paper_setup(user))
    refs = list(_signal_refs(make_signal()).values())
    write = execution._write

    def write_then_fail(uow, ledgers, items):
        write(uow, ledgers, items)
        uow.flush()  # every row of the batch is in the database now...
        raise RuntimeError("boom")  # ...and must all go away with the batch

    monkeypatch.setattr(execution, "_write", write_then_fail)
    assert services.plans_execute(plans=refs, symbol=SYMBOL) == {"executed": 2}
    assert "trading.batch_failed" in caplog.text
    with system_context(reason="test: count across tenants"):
        assert (Order.objects.count(), Fill.objects.count()) == (2, 2)
        assert Transaction.objects.filter(kind="buy").count() == 2
        assert Notification.objects.filter(kind="trading.order_filled").count() == 2
    for user in (user_a, user_b):
        assert_bought_once(user, quantity=Decimal("0.005"))


def test_a_database_outage_in_the_batch_is_raised_for_the_task_to_retry(user_a, btc_quote, monkeypatch):
    make_bot(user_a, paper_setup(user_a))
    refs = list(_signal_refs(make_signal()).values())

    def outage(*args, **kwargs):
        raise OperationalError("the server closed the connection")

    monkeypatch.setattr(execution, "paper_plans_execute", outage)
    with pytest.raises(OperationalError):
        services.plans_execute(plans=refs, symbol=SYMBOL)
    with tenant(user_a.pk):
        assert ExecutionPlan.objects.get().status == "pending" and not Order.objects.exists()


def test_the_batch_notifies_each_trader_and_sends_one_filled_event_for_the_chunk(
    user_a, user_b, btc_quote, django_capture_on_commit_callbacks
):
    from trading.events import orders_filled

    received = []
    orders_filled.connect(lambda sender, fills, **kwargs: received.append(fills), weak=False, dispatch_uid="test")
    try:
        for user in (user_a, user_b):
            make_bot(user, paper_setup(user))
        refs = list(_signal_refs(make_signal()).values())
        with django_capture_on_commit_callbacks(execute=True):
            execution.paper_plans_execute(refs, quote=_quote())
    finally:
        orders_filled.disconnect(dispatch_uid="test")
    assert len(received) == 1 and {fill["user_id"] for fill in received[0]} == {user_a.pk, user_b.pk}
    for user in (user_a, user_b):
        with tenant(user.pk):
            notification = Notification.objects.get()
            assert notification.message.startswith("Bot DCA: Bought 0.005 BTC at ")
            assert list(notification.deliveries.values_list("channel", "status")) == [("in_app", "sent")]


def test_two_plans_of_one_bot_in_a_chunk_both_count_on_the_bot(user_a, btc_quote):
    """A sweeper chunk can hold one bot's plans for two signals: the second waits for the first."""
    make_bot(user_a, paper_setup(user_a))
    first = list(_signal_refs(make_signal()).values())
    second = list(_signal_refs(make_signal(candle_open_time=timezone.now() - timedelta(hours=2))).values())
    outcome = execution.paper_plans_execute(first + second, quote=_quote())
    assert (outcome.counts, outcome.leftovers) == ({"executed": 1}, second)
    assert services.plans_execute(plans=first + second, symbol=SYMBOL) == {"executed": 2}
    with tenant(user_a.pk):
        bot = Bot.objects.get()
        assert bot.position_quantity == Decimal("0.010") == sum(o.quantity for o in Order.objects.all())
        assert Position.objects.get().quantity == Decimal("0.010")
        paid = sum(f.quantity * f.price + f.fee for f in Fill.objects.all())
        assert Fill.objects.count() == 2 and bot.position_cost == paid
        assert CashBalance.objects.get(currency="USDT").amount == Decimal("10000") - paid


def test_blocked_plans_are_told_once_each_in_one_batch(user_a, user_b, btc_quote, django_capture_on_commit_callbacks):
    from trading.events import executions_blocked

    for user in (user_a, user_b):
        make_bot(user, paper_setup(user))
    fan_out = services.signal_plan(signal_id=make_signal(regime="bearish").pk)
    assert len(fan_out.blocked) == 2
    received = []
    executions_blocked.connect(lambda sender, blocks, **kwargs: received.append(blocks), weak=False, dispatch_uid="t")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert execution.blocked_notify_batch(fan_out.blocked) == 2
        with django_capture_on_commit_callbacks(execute=True):
            assert execution.blocked_notify_batch(fan_out.blocked) == 2, "a redelivered chunk is told again..."
    finally:
        executions_blocked.disconnect(dispatch_uid="t")
    for user in (user_a, user_b):
        with tenant(user.pk):
            notification = Notification.objects.get()  # ...but notifies nobody twice
            assert notification.message.startswith("Bot DCA: buy blocked by the regime gatekeeper. Dollar-cost averaging")
            assert list(notification.deliveries.values_list("channel", "status")) == [("in_app", "sent")]
    assert [sorted(block["user_id"] for block in blocks) for blocks in received] == [sorted([user_a.pk, user_b.pk])] * 2


def test_deciding_runs_as_nobody_so_a_stray_query_sees_no_ones_rows(user_a, user_b, btc_quote):
    """A notification channel's `available(user)` may query the database while the batch decides: it must
    not run as whichever owner the pipeline set last."""
    from core import notifications
    from core.rls import current_tenant_id

    seen = []

    def available(user):
        seen.append(current_tenant_id())
        return False

    notifications.register_channel("probe", lambda notification: None, label="Probe", available=available)
    try:
        for user in (user_a, user_b):
            make_bot(user, paper_setup(user))
            notifications.notification_preference_set(
                user=user, kind="trading.order_filled", channel="probe", enabled=True
            )
        outcome = execution.paper_plans_execute(list(_signal_refs(make_signal()).values()), quote=_quote())
    finally:
        notifications._channels.pop("probe")
    assert outcome.counts == {"executed": 2}
    assert seen == [None, None]


@pytest.mark.parametrize("scenario", ["buy", "too_little_cash"])
def test_the_general_order_path_leaves_what_the_unit_of_work_writes(
    scenario, user_a, user_b, btc_quote, django_capture_on_commit_callbacks
):
    """What the batch cannot do (a replay, a failed batch) falls back to the general order path
    (`order_place`): a trader must not be able to tell which one ran."""
    cash = "5" if scenario == "too_little_cash" else "10000"
    general = (user_a, make_bot(user_a, paper_setup(user_a, cash=cash)))
    batch = (user_b, make_bot(user_b, paper_setup(user_b, cash=cash)))
    refs = _signal_refs(make_signal())
    with django_capture_on_commit_callbacks(execute=True):
        assert services._plan_place(plan_id=refs[general[0].pk][0], user_id=general[0].pk, quote=_quote()) in {
            "executed", "skipped",
        }
        _execute("batch", [refs[batch[0].pk]])
    assert trader_state(batch[0]) == trader_state(general[0])
