"""Runs: exactly once per trigger event (duplicate deliveries, a re-run, a worker SIGKILLed mid-run), the
per-rule rate limit and daily order cap, dry runs, and pausing a rule that keeps failing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connections, transaction

import automation.tasks  # noqa: F401  (the task the worker runs, registered here too)
from automation.actions import run_order_id
from automation.models import Rule, RuleRun, RunAction
from automation.services import rule_event_record, rule_test_fire, run_execute
from core.models import Notification
from core.rls import system_context, tenant
from marketdata.models import Instrument
from tests.automation.conftest import order_action, run_twice_at_once, webhook_rule
from tests.trading.conftest import make_bot
from trading.models import Bot, Order

ROOT = Path(__file__).resolve().parents[2]
EVENT = {"ticker": "BTC/USDT", "strategy.order.action": "buy", "strategy.order.contracts": "0.01"}


def _orders(user) -> list[Order]:
    with tenant(user.pk):
        return list(Order.objects.filter(user=user))


def _record(rule, event_id="e-1", event=EVENT):
    return rule_event_record(rule_id=rule.pk, user_id=rule.user_id, event_id=event_id, event=event, execute=False)


def test_a_duplicate_delivery_records_one_run_and_a_rerun_places_one_order(user_a, paper):
    rule = webhook_rule(user_a, paper)
    run = _record(rule)
    assert _record(rule) is None  # the same event again: nothing recorded
    run_execute(run_id=run.pk, user_id=user_a.pk)
    run_execute(run_id=run.pk, user_id=user_a.pk)
    assert len(_orders(user_a)) == 1
    with tenant(user_a.pk):
        run.refresh_from_db()
        assert run.status == "succeeded" and run.attempts == 1


def test_two_workers_on_one_run_at_once_place_one_order(user_a, paper):
    rule = webhook_rule(user_a, paper)
    run = _record(rule)

    statuses = run_twice_at_once(run, user_a)
    assert statuses == ["succeeded", "succeeded"]
    assert len(_orders(user_a)) == 1
    with tenant(user_a.pk):
        assert RunAction.objects.filter(run=run).count() == 1


def _worker(queue: str) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "-Q", queue,
         "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "info"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _wait(predicate, process, what: str, seconds: float = 45) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert process.poll() is None, process.stdout.read().decode()
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{what}: {process.stdout.read().decode()[-3000:]}")
        time.sleep(0.1)


def _blocked_by(holder_pid: int) -> bool:
    """Whether a session of this test database waits on a lock that `holder_pid` (the test's locker) holds:
    the worker blocked on the held row, not any lock wait elsewhere on the shared cluster."""
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND %s = ANY(pg_blocking_pids(pid))",
            [holder_pid],
        )
        return cursor.fetchone()[0] > 0


def _killed_while_blocked(*, table: str, row: int, task: str, args: list, queue: str, what: str,
                          also=lambda: True) -> None:
    """Hold `row` of `table` locked, let a real Celery worker take `task` on `queue`, and SIGKILL the worker as
    soon as it waits on that row (and `also()` holds); the lock is released after the kill."""
    from config.celery import app as celery_app

    locker = connections["system"]  # BYPASSRLS: it sees (and locks) the trader's row
    with transaction.atomic(using="system"):
        with locker.cursor() as cursor:
            cursor.execute(f'SELECT 1 FROM "{table}" WHERE id = %s FOR UPDATE', [row])
            assert cursor.fetchone() == (1,)
            cursor.execute("SELECT pg_backend_pid()")
            [locker_pid] = cursor.fetchone()
        worker = _worker(queue)
        try:
            celery_app.tasks[task].apply_async(args=args, queue=queue)
            _wait(lambda: also() and _blocked_by(locker_pid), worker, what)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()


def _feed_live_for_the_whole_test(symbol: str = "BTC/USDT") -> None:
    """A worker can take well over the 30 s a quote stays fresh to start on a loaded machine: the quote is
    kept fresh for the test (the paper venue refuses a market order on a stale price)."""
    with system_context(reason="tests: the quote outlives a slow worker start"):
        Instrument.objects.filter(symbol=symbol).update(stale_after_seconds=3600)


@pytest.mark.parametrize("cut", ["before the order", "after the order"])
def test_a_worker_killed_mid_run_and_redelivered_places_one_order(user_a, paper, cut):
    """A real Celery worker claims the run and is SIGKILLed while blocked on a row lock; the redelivered task
    resumes the run: one order, not two (and none lost)."""

    _feed_live_for_the_whole_test()
    bot = make_bot(user_a, paper)
    rule = webhook_rule(user_a, paper, actions=[order_action(paper), {"kind": "pause_bot", "bot_id": bot.pk}])
    run = _record(rule)
    queue = f"automation-kill-{os.getpid()}-{run.pk}"
    # Block the worker: before the order the action waits for the rule row (the daily cap's lock); after the
    # order is committed, pausing the bot waits for the bot row.
    table, row = (Rule._meta.db_table, rule.pk) if cut == "before the order" else (Bot._meta.db_table, bot.pk)
    def claimed() -> bool:
        with tenant(user_a.pk):
            return RuleRun.objects.get(pk=run.pk).status == "running"

    # Killed as soon as it waits on the held row (long before the 20 s lock_timeout of the tests).
    _killed_while_blocked(table=table, row=row, task="automation.run_execute", args=[run.pk, user_a.pk],
                          queue=queue, what="the worker did not claim the run and wait on the held row", also=claimed)
    assert len(_orders(user_a)) == (0 if cut == "before the order" else 1)
    with tenant(user_a.pk):
        claims = RuleRun.objects.get(pk=run.pk).attempts  # 1 (more only if a lock wait ended in a retry)
    # The broker delivers the unacknowledged task again: the same task, the same run.
    run_execute(run_id=run.pk, user_id=user_a.pk)
    run_execute(run_id=run.pk, user_id=user_a.pk)
    assert len(_orders(user_a)) == 1
    with tenant(user_a.pk):
        run.refresh_from_db()
        assert run.status == "succeeded", run.detail
        assert run.attempts == claims + 1  # resumed once; the second delivery found the run finished
        assert [r.status for r in RunAction.objects.filter(run=run).order_by("position")] == ["succeeded", "succeeded"]
        assert Bot.objects.get(pk=bot.pk).status == "paused"


def test_an_order_action_whose_lock_wait_times_out_is_retried_not_recorded_failed(user_a, paper):
    """The worker's wait on the rule row (the daily cap's lock) ends in lock_timeout: the database failed, not
    the action. Nothing is recorded, the task's retry resumes the run and places the order once."""
    from django.db import OperationalError

    bot = make_bot(user_a, paper)
    rule = webhook_rule(user_a, paper, actions=[order_action(paper), {"kind": "pause_bot", "bot_id": bot.pk}])
    run = _record(rule)
    with transaction.atomic(using="system"):
        with connections["system"].cursor() as cursor:
            cursor.execute(f'SELECT 1 FROM "{Rule._meta.db_table}" WHERE id = %s FOR UPDATE', [rule.pk])
        with connections["default"].cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        try:
            with pytest.raises(OperationalError):
                run_execute(run_id=run.pk, user_id=user_a.pk)
        finally:
            with connections["default"].cursor() as cursor:
                cursor.execute("RESET lock_timeout")
    assert _orders(user_a) == []
    with tenant(user_a.pk):
        assert RuleRun.objects.get(pk=run.pk).status == "running"
        assert not RunAction.objects.filter(run=run).exists()
    run_execute(run_id=run.pk, user_id=user_a.pk)  # the task's retry
    [order] = _orders(user_a)
    assert order.pk == run_order_id(run_id=run.pk, position=0)
    with tenant(user_a.pk):
        run.refresh_from_db()
        assert run.status == "succeeded", run.detail
        assert run.attempts == 2
        assert [r.status for r in RunAction.objects.filter(run=run).order_by("position")] == ["succeeded", "succeeded"]
        assert Bot.objects.get(pk=bot.pk).status == "paused"


def test_the_rate_limit_skips_runs_beyond_the_hourly_allowance(user_a, paper):
    rule = webhook_rule(user_a, paper, max_runs_per_hour=2)
    runs = [_record(rule, event_id=f"e-{i}") for i in range(3)]
    assert [r.status for r in runs] == ["pending", "pending", "skipped"]
    assert "Rate limit" in runs[2].detail


def test_the_daily_order_cap_refuses_an_order_that_would_exceed_it(user_a, paper):
    rule = webhook_rule(user_a, paper, daily_order_cap="300")  # BTC at 20,000: 0.01 is about 200
    first, second = _record(rule, "e-1"), _record(rule, "e-2")
    assert run_execute(run_id=first.pk, user_id=user_a.pk).status == "succeeded"
    refused = run_execute(run_id=second.pk, user_id=user_a.pk)
    assert refused.status == "failed"
    assert "Daily order cap" in refused.detail
    assert len(_orders(user_a)) == 1


def test_a_dry_run_records_what_would_happen_and_does_nothing(user_a, paper):
    rule = webhook_rule(user_a, paper)
    run = rule_test_fire(user=user_a, rule=rule, event={"ticker": "BTCUSDT", "action": "sell", "contracts": "0.005"})
    assert run.status == "dry_run"
    with tenant(user_a.pk):
        [result] = run.results.all()
    assert result.status == "would" and result.summary.startswith("Would sell 0.005 BTC/USDT")
    assert _orders(user_a) == []


def test_a_rule_failing_n_times_in_a_row_is_paused_and_its_owner_told(user_a, paper, settings):
    settings.AUTOMATION_FAILURES_TO_PAUSE = 2
    rule = webhook_rule(user_a, paper)
    too_big = {**EVENT, "strategy.order.contracts": "100"}  # 2,000,000 USDT: more than the paper cash
    for i in range(2):
        run = _record(rule, f"e-{i}", too_big)
        assert run_execute(run_id=run.pk, user_id=user_a.pk).status == "failed"
    with tenant(user_a.pk):
        rule.refresh_from_db()
        assert rule.status == "paused" and "2 failed runs in a row" in rule.paused_reason
        [notice] = Notification.objects.filter(user=user_a, kind="automation.rule_paused")
        assert rule.name in notice.message
    assert _record(rule, "e-9").status == "skipped"
