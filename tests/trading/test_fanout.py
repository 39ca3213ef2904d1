"""Execution fan-out: one signal, per-user plans in bulk, idempotent execution, the regime gatekeeper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection as db

from core.rls import system_context, tenant
from marketdata.models import Candle, Instrument
from portfolios.selectors import transaction_list
from tests.factories import UserFactory
from tests.trading.conftest import make_bot, make_signal, paper_setup, set_quote
from tests.trading.market_data import minute_bars
from trading.decisions.services import signals_compute
from trading.fanout import services
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
    again = plans_execute_task.apply(args=[chunk, "BTC/USDT"]).get()
    assert again == {"executed": 2}, "already executed plans report their status and do nothing"
    replanned = services.signal_plan(signal_id=signal.pk)
    assert replanned.planned == 0 and replanned.pending == []
    with system_context(reason="test: count across tenants"):
        assert ExecutionPlan.objects.count() == 2
        assert Order.objects.count() == 2
        assert Fill.objects.count() == 2


def test_a_plan_order_id_is_derived_from_the_plan(user_a, two_bots):
    signal = make_signal()
    fan_out = services.signal_plan(signal_id=signal.pk)
    services.plans_execute(plans=fan_out.pending, symbol="BTC/USDT")
    with tenant(user_a.pk):
        plan = ExecutionPlan.objects.get()
        assert plan.order_id == services.plan_order_id(plan.pk)


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


def test_a_chunk_delivered_after_the_signal_went_stale_executes_nothing(user_a, two_bots, settings):
    fan_out = services.signal_plan(signal_id=make_signal().pk)
    settings.TRADING_SIGNAL_MAX_LAG_SECONDS = 0
    assert services.plans_execute(plans=fan_out.pending, symbol="BTC/USDT") == {"skipped": 2}
    with system_context(reason="test"):
        assert not Order.objects.exists()
        assert set(ExecutionPlan.objects.values_list("reason", flat=True)) == {"Not executed: the signal was 5s old (stale)."}


def test_the_sweeper_expires_stale_plans_and_requeues_lost_ones(user_a, user_b, two_bots):
    from django.utils import timezone

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
