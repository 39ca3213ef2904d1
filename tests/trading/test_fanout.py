"""Execution fan-out: one signal, per-user plans in bulk, idempotent execution, the regime gatekeeper."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection as db
from django.db import connections
from django.utils import timezone

from core.rls import system_context, tenant
from marketdata.models import Candle, Instrument
from marketdata.selectors import quote_latest_map
from portfolios.models import CashBalance, Position
from portfolios.selectors import transaction_list
from tests.factories import UserFactory
from tests.trading.conftest import make_bot, make_signal, paper_setup, set_quote
from tests.trading.market_data import minute_bars
from tests.trading.state import assert_bought_once, trader_state
from trading.decisions.services import signals_compute
from trading.fanout import batch as execution
from trading.fanout import services
from trading.fanout.plans import plan_order_id
from trading.models import BlockedExecution, Bot, ExecutionPlan, Fill, Order, Signal
from trading.tasks import plans_execute_task


def _count(table: str) -> int:
    with db.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed table names
        return cursor.fetchone()[0]


@pytest.fixture
def two_bots(user_a, user_b, paper_a, paper_b):
    return make_bot(user_a, paper_a), make_bot(user_b, paper_b, allocation=Decimal("300"))


def test_one_signal_becomes_one_plan_per_bot_each_executed_as_its_owner(user_a, user_b, two_bots, paper_a):
    signal = make_signal()
    fan_out = services.signal_plan(signal_id=signal.pk)
    assert fan_out.planned == 2 and len(fan_out.pending) == 2
    assert sorted(user for _, user in fan_out.pending) == sorted([user_a.pk, user_b.pk])

    counts = plans_execute_task.apply(args=[[list(ref) for ref in fan_out.pending], "BTC/USDT"]).get()
    assert counts == {"executed": 2}
    with tenant(user_a.pk):
        [order] = Order.objects.all()  # RLS: alice sees her bot's order only
        assert (order.side, order.quantity, order.source, order.status) == ("buy", Decimal("0.005"), "bot", "filled")
        bot = Bot.objects.get()
        assert bot.position_quantity == Decimal("0.005")
        assert transaction_list(portfolio=paper_a[0], kind="buy").count() == 1
    with tenant(user_b.pk):
        assert Order.objects.get().quantity == Decimal("0.015")  # 300 USDT at 20,000


def test_redelivering_a_chunk_or_replanning_creates_nothing_new(user_a, user_b, two_bots):
    signal = make_signal()
    fan_out = services.signal_plan(signal_id=signal.pk)
    chunk = [list(ref) for ref in fan_out.pending]
    plans_execute_task.apply(args=[chunk, "BTC/USDT"])
    after_one = {user.pk: trader_state(user) for user in (user_a, user_b)}
    again = plans_execute_task.apply(args=[chunk, "BTC/USDT"]).get()
    assert again == {"executed": 2}, "already executed plans report their status and do nothing"
    replanned = services.signal_plan(signal_id=signal.pk)
    assert replanned.planned == 0 and replanned.pending == []
    with system_context(reason="test: count across tenants"):
        assert ExecutionPlan.objects.count() == 2
        assert Order.objects.count() == 2
        assert Fill.objects.count() == 2
    # What each trader sees: cash, position, lots and the bot's position moved by one execution only.
    assert {user.pk: trader_state(user) for user in (user_a, user_b)} == after_one
    assert_bought_once(user_a, quantity=Decimal("0.005"))
    assert_bought_once(user_b, quantity=Decimal("0.015"))


@pytest.mark.parametrize("redelivery", ["task", "single_path", "sweeper", "whole_fan_out"])
def test_after_any_redelivery_each_trader_has_paid_for_one_buy(redelivery, user_a, user_b, two_bots):
    signal = make_signal()
    fan_out = services.signal_plan(signal_id=signal.pk)
    chunk = [list(ref) for ref in fan_out.pending]
    assert plans_execute_task.apply(args=[chunk, "BTC/USDT"]).get() == {"executed": 2}
    after_one = {user.pk: trader_state(user) for user in (user_a, user_b)}
    if redelivery == "task":
        assert plans_execute_task.apply(args=[chunk, "BTC/USDT"]).get() == {"executed": 2}
    elif redelivery == "single_path":  # the batch's fallback, or a sweeper chunk without a fresh quote
        assert services.plans_execute(plans=fan_out.pending, symbol=None) == {"executed": 2}
    elif redelivery == "sweeper":  # a minute later the sweeper looks for lost chunks: executed plans are not
        sweep = services.trading_sweep(now=timezone.now() + timedelta(seconds=61))
        assert (sweep.expired_plans, sweep.requeued_plans) == (0, [])
    else:  # the planning task itself redelivered: nothing new to plan, the old chunk once more
        again = services.signal_plan(signal_id=signal.pk)
        assert (again.planned, again.pending) == (0, [])
        assert services.plans_execute(plans=fan_out.pending, symbol="BTC/USDT") == {"executed": 2}
    assert {user.pk: trader_state(user) for user in (user_a, user_b)} == after_one
    assert_bought_once(user_a, quantity=Decimal("0.005"))
    assert_bought_once(user_b, quantity=Decimal("0.015"))


def test_a_redelivered_sell_chunk_sells_the_bots_position_once(user_a, paper_a):
    make_bot(user_a, paper_a)
    services.plans_execute(plans=services.signal_plan(signal_id=make_signal().pk).pending, symbol="BTC/USDT")
    set_quote("BTC/USDT", "21000", bid="20999", ask="21001")
    sell = make_signal(action="sell", candle_open_time=datetime(2024, 1, 1, tzinfo=UTC))
    chunk = services.signal_plan(signal_id=sell.pk).pending
    assert services.plans_execute(plans=chunk, symbol="BTC/USDT") == {"executed": 1}
    after_one = trader_state(user_a)
    assert services.plans_execute(plans=chunk, symbol="BTC/USDT") == {"executed": 1}
    assert services.plans_execute(plans=chunk, symbol=None) == {"executed": 1}
    assert trader_state(user_a) == after_one
    with tenant(user_a.pk):
        bot = Bot.objects.get()
        bought, sold = Fill.objects.get(order__side="buy"), Fill.objects.get(order__side="sell")
        cash = CashBalance.objects.get(currency="USDT").amount
        position = Position.objects.get()
    assert sold.quantity == bought.quantity == Decimal("0.005")
    assert (bot.position_quantity, bot.position_cost, position.quantity) == (0, 0, 0)
    proceeds = sold.quantity * sold.price - sold.fee
    assert bot.realized_pnl == proceeds - (bought.quantity * bought.price + bought.fee), "realized once"
    assert cash == Decimal("10000") - bought.quantity * bought.price - bought.fee + proceeds


@pytest.mark.parametrize(("first", "second"), [("batch", "batch"), ("batch", "single"), ("single", "batch")])
def test_two_workers_running_the_same_chunk_at_once_execute_each_plan_once(
    first, second, user_a, user_b, two_bots, monkeypatch
):
    """A chunk redelivered while its first worker is still running it (the broker's visibility timeout ran
    out, or the sweeper requeued it): the second worker starts while the first holds the plans' locks with
    every row written but not committed, waits for it, and then does nothing."""
    chunk = services.signal_plan(signal_id=make_signal().pk).pending
    holding, release, lock = threading.Event(), threading.Event(), threading.Lock()

    def hold_the_first(original):
        def run(*args, **kwargs):
            result = original(*args, **kwargs)
            with lock:
                first_caller = not holding.is_set()
                holding.set()
            if first_caller:
                assert release.wait(30), "the test never let the first worker commit"
            return result
        return run

    # The first worker stops once it has written its plans' rows, inside its transaction.
    monkeypatch.setattr(execution, "_write", hold_the_first(execution._write))
    monkeypatch.setattr(services, "order_place", hold_the_first(services.order_place))

    def run_chunk(path):
        if path == "batch":
            return services.plans_execute(plans=chunk, symbol="BTC/USDT")
        quote = quote_latest_map(symbols=["BTC/USDT"])["BTC/USDT"]
        return Counter(services.plan_execute(plan_id=p, user_id=u, quote=quote) for p, u in chunk)

    pids, results = {}, {}

    def worker(name, path):
        try:
            with db.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pids[name] = cursor.fetchone()[0]
            results[name] = run_chunk(path)
        except BaseException as error:  # reported by the assertions below
            results[name] = error
            holding.set()
        finally:
            connections.close_all()

    one = threading.Thread(target=worker, args=("first", first))
    two = threading.Thread(target=worker, args=("second", second))
    one.start()
    assert holding.wait(30), "the first worker never reached its writes"
    two.start()
    deadline = time.monotonic() + 30
    while not _waits_for(pids.get("second"), pids.get("first")):
        assert two.is_alive() and time.monotonic() < deadline, "the second worker never waited for the first"
        time.sleep(0.01)
    release.set()
    one.join(60)
    two.join(60)
    assert not one.is_alive() and not two.is_alive()
    assert dict(results["first"]) == {"executed": 2}, results["first"]
    assert dict(results["second"]) == {"executed": 2}, "the second found them executed and did nothing"
    assert_bought_once(user_a, quantity=Decimal("0.005"))
    assert_bought_once(user_b, quantity=Decimal("0.015"))


def _waits_for(waiter: int | None, holder: int | None) -> bool:
    """Whether backend `waiter` is blocked on a lock that backend `holder` holds (asked from a third one)."""
    if waiter is None or holder is None:
        return False
    with db.cursor() as cursor:
        cursor.execute("SELECT %s = ANY(pg_blocking_pids(%s))", [holder, waiter])
        return cursor.fetchone()[0]


def test_a_plan_order_id_is_derived_from_the_plan(user_a, two_bots):
    signal = make_signal()
    fan_out = services.signal_plan(signal_id=signal.pk)
    services.plans_execute(plans=fan_out.pending, symbol="BTC/USDT")
    with tenant(user_a.pk):
        plan = ExecutionPlan.objects.get()
        assert plan.order_id == plan_order_id(plan.pk)


def test_buys_are_sized_by_allocation_max_position_balance_and_loss_limit(user_a, user_b, paper_a, paper_b):
    tight = make_bot(user_a, paper_a, name="Tight", max_position=Decimal("0.002"))
    make_bot(user_b, paper_b, name="Rich", allocation=Decimal("50000"), max_position=Decimal("10"))
    with tenant(user_a.pk):
        Bot.objects.filter(pk=tight.pk).update(realized_pnl_day=Decimal("0"), pnl_day=datetime.now(UTC).date())
    signal = make_signal()
    fan_out = services.signal_plan(signal_id=signal.pk)
    services.plans_execute(plans=fan_out.pending, symbol="BTC/USDT")
    with tenant(user_a.pk):
        assert Order.objects.get().quantity == Decimal("0.002")  # capped by the maximum position
    with tenant(user_b.pk):
        # 50,000 USDT wanted, 10,000 held: sized down to what the balance buys (ask + slippage + fee).
        order = Order.objects.get()
        assert Decimal("0.49") < order.quantity < Decimal("0.5")
        assert order.quantity * order.average_price + order.fees_paid <= Decimal("10000")


def test_a_bot_past_its_daily_loss_limit_does_not_buy(user_a, paper_a):
    bot = make_bot(user_a, paper_a)
    with tenant(user_a.pk):
        Bot.objects.filter(pk=bot.pk).update(realized_pnl_day=Decimal("-60"), pnl_day=datetime.now(UTC).date())
    fan_out = services.signal_plan(signal_id=make_signal().pk)
    assert fan_out.pending == []
    with tenant(user_a.pk):
        plan = ExecutionPlan.objects.get()
    assert (plan.status, plan.reason) == ("skipped", "Daily loss limit reached.")


def test_a_sell_signal_sells_what_the_bot_bought(user_a, paper_a):
    make_bot(user_a, paper_a)
    services.plans_execute(plans=services.signal_plan(signal_id=make_signal().pk).pending, symbol="BTC/USDT")
    set_quote("BTC/USDT", "19000", bid="18999", ask="19001")
    sell = make_signal(action="sell", regime="bearish", candle_open_time=datetime(2024, 1, 1, tzinfo=UTC))
    services.plans_execute(plans=services.signal_plan(signal_id=sell.pk).pending, symbol="BTC/USDT")
    with tenant(user_a.pk):
        bot = Bot.objects.get()
        sold = Order.objects.get(side="sell")
    assert sold.quantity == Decimal("0.005") and bot.position_quantity == 0
    assert bot.realized_pnl < 0 and bot.realized_pnl_day == bot.realized_pnl


def test_a_stale_signal_is_rejected_not_executed_late(user_a, two_bots, settings):
    signal = make_signal(age_seconds=settings.TRADING_SIGNAL_MAX_LAG_SECONDS + 30)
    fan_out = services.signal_plan(signal_id=signal.pk)
    assert fan_out.stale and fan_out.pending == []
    signal.refresh_from_db()
    assert signal.status == "stale"
    with system_context(reason="test"):
        assert ExecutionPlan.objects.count() == 0


def test_the_gatekeeper_blocks_and_records_each_execution(client, user_a, user_b, two_bots):
    signal = make_signal(regime="bearish")  # DCA buys only in bullish or sideways markets
    fan_out = services.signal_plan(signal_id=signal.pk)
    assert fan_out.pending == [] and len(fan_out.blocked) == 2
    services.blocked_notify(plans=fan_out.blocked)
    with tenant(user_a.pk):
        [blocked] = BlockedExecution.objects.all()
        assert (blocked.regime, blocked.side, blocked.signal_id) == ("bearish", "buy", signal.pk)
        assert "does not buy in a bearish market" in blocked.reason
        assert not Order.objects.exists()
    client.force_login(user_a)
    page = client.get("/trading/blocked/").content.decode()
    assert "does not buy in a bearish market" in page and "Bearish" in page
    bot_page = client.get(f"/trading/bots/{blocked.bot_id}/").content.decode()
    assert "does not buy in a bearish market" in bot_page


def test_the_signal_engine_on_real_candles_blocks_a_dca_buy_in_the_march_10_crash(user_a, paper_a):
    bot = make_bot(user_a, paper_a, params={"every": 1})
    instrument = Instrument.objects.get(symbol="BTC/USDT")
    start, end = datetime(2023, 3, 7, tzinfo=UTC), datetime(2023, 3, 10, 12, tzinfo=UTC)
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Candle.objects.bulk_create(
            Candle(instrument=instrument, open_time=b.open_time, open=b.open, high=b.high, low=b.low, close=b.close,
                   volume=b.volume)
            for b in minute_bars() if start <= b.open_time < end
        )
    last_open = end - timedelta(minutes=1)
    [signal] = signals_compute(symbol="BTC/USDT", candle_open_time=last_open)
    assert (signal.action, signal.regime, signal.candle_open_time) == ("buy", "bearish", last_open)
    assert signals_compute(symbol="BTC/USDT", candle_open_time=last_open) == [signal], "one decision"
    fan_out = services.signal_plan(signal_id=signal.pk, now=signal.closed_at + timedelta(seconds=1))
    assert len(fan_out.blocked) == 1
    with tenant(user_a.pk):
        assert BlockedExecution.objects.get().bot_id == bot.pk
    assert Signal.objects.count() == 1


def test_every_new_table_is_isolated_by_row_level_security(user_a, user_b, two_bots):
    fan_out = services.signal_plan(signal_id=make_signal().pk)
    services.plans_execute(plans=fan_out.pending, symbol="BTC/USDT")
    services.signal_plan(signal_id=make_signal(regime="bearish", candle_open_time=datetime(2024, 1, 1, tzinfo=UTC)).pk)
    tables = ["trading_exchangeconnection", "trading_bot", "trading_order", "trading_fill", "trading_executionplan",
              "trading_blockedexecution"]
    with system_context(reason="test: totals"):
        totals = {t: _count(t) for t in tables}
    assert all(totals[t] >= 2 for t in tables)
    with tenant(user_a.pk):
        mine = {t: _count(t) for t in tables}
        with db.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM trading_order WHERE user_id = %s", [user_b.pk])
            assert cursor.fetchone()[0] == 0
            cursor.execute("UPDATE trading_bot SET status = 'paused' WHERE user_id = %s", [user_b.pk])
            assert cursor.rowcount == 0
    assert all(0 < mine[t] < totals[t] for t in tables)
    assert all(_count(t) == 0 for t in tables), "without a tenant nothing is visible"


def test_a_third_user_without_bots_gets_no_plan(user_a, two_bots):
    outsider = UserFactory(email="carol@example.com")
    paper_setup(outsider)
    fan_out = services.signal_plan(signal_id=make_signal().pk)
    assert outsider.pk not in {user for _, user in fan_out.pending}


def test_a_chunk_delivered_after_the_signal_went_stale_executes_nothing(user_a, user_b, two_bots, settings):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        fan_out = services.signal_plan(signal_id=make_signal(age_seconds=5).pk)
        clock.shift(settings.TRADING_SIGNAL_MAX_LAG_SECONDS - 5 + 1)  # the chunk waited in the queue
        assert services.plans_execute(plans=fan_out.pending, symbol=None) == {"skipped": 2}
    lag = settings.TRADING_SIGNAL_MAX_LAG_SECONDS + 1
    with system_context(reason="test"):
        assert not Order.objects.exists()
        assert set(ExecutionPlan.objects.values_list("reason", flat=True)) == {
            f"Not executed: the signal was {lag}s old (stale)."
        }
    for user in (user_a, user_b):
        with tenant(user.pk):
            assert CashBalance.objects.get(currency="USDT").amount == Decimal("10000")
            assert not Position.objects.exists() and Bot.objects.get().position_quantity == 0


def test_a_chunk_delivered_after_the_signal_went_stale_executes_nothing_in_the_batch_either(
    user_a, two_bots, settings
):
    """The same on the batch path, which needs a fresh quote: the quote is renewed, the signal is not."""
    with time_machine.travel(timezone.now(), tick=False) as clock:
        fan_out = services.signal_plan(signal_id=make_signal(age_seconds=5).pk)
        clock.shift(settings.TRADING_SIGNAL_MAX_LAG_SECONDS)
        set_quote("BTC/USDT", "20000", bid="19999", ask="20001")
        assert services.plans_execute(plans=fan_out.pending, symbol="BTC/USDT") == {"skipped": 2}
    lag = settings.TRADING_SIGNAL_MAX_LAG_SECONDS + 5
    with system_context(reason="test"):
        assert not Order.objects.exists()
        assert set(ExecutionPlan.objects.values_list("reason", flat=True)) == {
            f"Not executed: the signal was {lag}s old (stale)."
        }


def test_the_sweeper_expires_stale_plans_and_requeues_lost_ones(user_a, user_b, two_bots):
    stale = services.signal_plan(signal_id=make_signal().pk)
    fresh = services.signal_plan(signal_id=make_signal(candle_open_time=datetime(2024, 1, 1, tzinfo=UTC)).pk)
    with system_context(reason="test: age the plans and one signal"):
        Signal.objects.filter(pk=stale.signal_id).update(closed_at=timezone.now() - timedelta(hours=1))
        ExecutionPlan.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    sweep = services.trading_sweep()
    assert sweep.expired_plans == 2
    assert sorted((p, u) for p, u, _ in sweep.requeued_plans) == sorted(fresh.pending)
    with system_context(reason="test"):
        assert set(ExecutionPlan.objects.filter(signal_id=stale.signal_id).values_list("status", flat=True)) == {"skipped"}
