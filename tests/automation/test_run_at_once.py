"""Runs whose actions only write rows of this database are carried out whole in the transaction that claims
them: exactly once under a re-run, two workers at once and a worker SIGKILLed mid-run (nothing of it is kept,
the redelivered task does it all once); conditions, failures counted towards the pause, dry runs; and the
statements a trigger costs, from the hook to the action, stay few."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from django.db import connections
from django.test.utils import CaptureQueriesContext

import automation.tasks  # noqa: F401  (the task the worker runs, registered here too)
from automation.models import Rule, RuleRun, RunAction
from automation.services import rule_create, rule_event_record, run_execute
from core.models import Notification
from core.rls import tenant
from tests.automation.conftest import post_hook, run_twice_at_once, tv_body, webhook_rule
from tests.automation.test_runs import _killed_while_blocked

EVENT = {"ticker": "BTC/USDT", "strategy.order.action": "buy", "strategy.order.contracts": "0.01"}
NOTIFY = {"kind": "notify", "message": "{{rule}}: {{ticker}} {{strategy.order.action}}"}


def _notify_rule(user, paper, **fields):
    return webhook_rule(user, paper, actions=[NOTIFY], daily_order_cap=None, max_runs_per_hour=120, **fields)


def _record(rule, event_id="e-1", event=EVENT):
    return rule_event_record(rule_id=rule.pk, user_id=rule.user_id, event_id=event_id, event=event, execute=False)


def _notices(user, run) -> list[Notification]:
    with tenant(user.pk):
        return list(Notification.objects.filter(user=user, dedup_key=f"automation-run:{run.pk}:0"))


def test_a_notify_run_acts_once_and_a_rerun_does_nothing(user_a, paper):
    rule = _notify_rule(user_a, paper)
    run = _record(rule)
    assert run_execute(run_id=run.pk, user_id=user_a.pk).status == "succeeded"
    assert run_execute(run_id=run.pk, user_id=user_a.pk).status == "succeeded"
    [notice] = _notices(user_a, run)
    assert notice.message == "TradingView: BTC/USDT buy"
    with tenant(user_a.pk):
        run.refresh_from_db()
        assert run.attempts == 1 and run.claimed_at is not None and run.finished_at is not None
        assert run.conditions == []
        [result] = RunAction.objects.filter(run=run)
        assert result.status == "succeeded" and result.summary == "Notified: TradingView: BTC/USDT buy"
        rule.refresh_from_db()
        assert rule.last_run_at == run.finished_at and rule.consecutive_failures == 0


def test_two_workers_on_one_notify_run_at_once_notify_once(user_a, paper):
    rule = _notify_rule(user_a, paper)
    run = _record(rule)

    statuses = run_twice_at_once(run, user_a)
    assert statuses == ["succeeded", "succeeded"]
    assert len(_notices(user_a, run)) == 1
    with tenant(user_a.pk):
        assert RunAction.objects.filter(run=run).count() == 1
        assert RuleRun.objects.get(pk=run.pk).attempts == 1


def test_a_worker_killed_mid_run_keeps_nothing_and_the_redelivery_notifies_once(user_a, paper):
    """A real Celery worker has acted (the notification and its result row are written, not committed) and
    waits for the rule's row to close the run when it is SIGKILLed: nothing of the run is kept, and the
    redelivered task carries it out once."""

    rule = _notify_rule(user_a, paper)
    run = _record(rule)
    queue = f"automation-once-{os.getpid()}-{run.pk}"
    _killed_while_blocked(table=Rule._meta.db_table, row=rule.pk, task="automation.run_execute",
                          args=[run.pk, user_a.pk], queue=queue,
                          what="the worker did not act and wait on the rule's row")
    assert _notices(user_a, run) == []
    with tenant(user_a.pk):
        killed = RuleRun.objects.get(pk=run.pk)
        assert (killed.status, killed.attempts, killed.claimed_at) == ("pending", 0, None)
        assert not RunAction.objects.filter(run=run).exists()
    # The broker delivers the unacknowledged task again.
    run_execute(run_id=run.pk, user_id=user_a.pk)
    run_execute(run_id=run.pk, user_id=user_a.pk)
    assert len(_notices(user_a, run)) == 1
    with tenant(user_a.pk):
        run.refresh_from_db()
        assert (run.status, run.attempts) == ("succeeded", 1)
        assert RunAction.objects.filter(run=run).count() == 1


def test_a_condition_not_met_acts_on_nothing(user_a, paper):
    portfolio, _ = paper
    rule = _notify_rule(user_a, paper, conditions=[
        {"kind": "portfolio_value", "portfolio_id": portfolio.pk, "op": ">", "value": "1000000000"}])
    run = _record(rule)
    done = run_execute(run_id=run.pk, user_id=user_a.pk)
    assert done.status == "conditions_not_met"
    assert done.conditions[0]["passed"] is False
    assert _notices(user_a, run) == []
    with tenant(user_a.pk):
        assert not RunAction.objects.filter(run=run).exists()
        assert RuleRun.objects.get(pk=run.pk).attempts == 1


def test_failing_in_database_actions_count_towards_the_pause(user_a, paper, settings):
    settings.AUTOMATION_FAILURES_TO_PAUSE = 2
    rule = webhook_rule(user_a, paper, daily_order_cap=None, actions=[{"kind": "pause_bot", "bot_id": _bot(user_a, paper)}])
    with tenant(user_a.pk):
        from trading.models import Bot

        Bot.objects.filter(user=user_a).delete()  # the action now refers to a bot that is gone: it fails
    for i in range(2):
        run = _record(rule, f"e-{i}")
        failed = run_execute(run_id=run.pk, user_id=user_a.pk)
        assert failed.status == "failed" and "1 of 1 actions failed" in failed.detail
    with tenant(user_a.pk):
        rule.refresh_from_db()
        assert rule.status == "paused" and "2 failed runs in a row" in rule.paused_reason
        assert Notification.objects.filter(user=user_a, kind="automation.rule_paused").count() == 1
    assert _record(rule, "e-9").status == "skipped"


def _bot(user, paper) -> int:
    from tests.trading.conftest import make_bot

    return make_bot(user, paper).pk


def test_a_dry_run_rule_records_what_it_would_do_in_one_go(user_a, paper):
    rule = _notify_rule(user_a, paper, dry_run=True)
    run = _record(rule)
    done = run_execute(run_id=run.pk, user_id=user_a.pk)
    assert done.status == "dry_run"
    assert _notices(user_a, run) == []
    with tenant(user_a.pk):
        [result] = RunAction.objects.filter(run=run)
        assert result.status == "would" and result.summary == "Would notify: TradingView: BTC/USDT buy"
        rule.refresh_from_db()
        assert rule.last_run_at is None  # a dry run is not a run of the rule


def test_a_trigger_costs_few_statements_from_the_hook_to_the_action(client, user_a, paper):
    """The hook: the token's lookup (system role), then one transaction that locks the rule, records the run
    and counts the hour's runs. The run: one transaction from the claim to the close (the toast after it)."""
    rule = _notify_rule(user_a, paper)
    post_hook(client, rule, tv_body(rule, event_id="warm"))  # the first request loads what it needs
    default, system = CaptureQueriesContext(connections["default"]), CaptureQueriesContext(connections["system"])
    with default, system:
        response = post_hook(client, rule, tv_body(rule, event_id="counted"))
    assert response.status_code == 202
    assert len(system.captured_queries) <= 3  # BEGIN, the token's rule, COMMIT
    assert len(default.captured_queries) <= 12, [q["sql"][:80] for q in default.captured_queries]
    with CaptureQueriesContext(connections["default"]) as executed:
        assert run_execute(run_id=response.json()["run"], user_id=user_a.pk).status == "succeeded"
    statements = [q["sql"] for q in executed.captured_queries]
    # One transaction acts and closes the run; the in-app toast's delivery follows its commit.
    acting = statements[: statements.index("COMMIT") + 1]
    assert statements[0] == "BEGIN" and len(acting) <= 18, acting


# --- Drains: whole runs share a task -------------------------------------------------------------------


def _queued(monkeypatch) -> list[tuple[str, list]]:
    from automation import services

    sent: list[tuple[str, list]] = []
    monkeypatch.setattr(services, "task_enqueue", lambda name, *, args=(), **_: sent.append((name, list(args))))
    return sent


def _slot_of(run_id: int) -> int:
    from automation.services import drain_slots

    return run_id % drain_slots()


def test_whole_runs_ring_their_slot_once_and_one_drain_carries_them_all_out(client, user_a, paper, monkeypatch, settings):
    from automation.services import runs_drain

    settings.AUTOMATION_DRAIN_SLOTS = 1
    sent = _queued(monkeypatch)
    rule = _notify_rule(user_a, paper)
    runs = [post_hook(client, rule, tv_body(rule, event_id=f"d-{i}")).json()["run"] for i in range(3)]
    assert sent == [("automation.runs_drain", [0])]  # the first ring queued a drain; the others found it queued
    assert runs_drain(slot=0) == 3
    with tenant(user_a.pk):
        assert sorted(RuleRun.objects.filter(pk__in=runs).values_list("status", flat=True)) == ["succeeded"] * 3
        assert Notification.objects.filter(user=user_a, kind="automation.rule").count() == 3
    assert runs_drain(slot=0) == 0
    # The drain took the doorbell down: the next run rings again.
    post_hook(client, rule, tv_body(rule, event_id="d-late"))
    assert sent[-1] == ("automation.runs_drain", [0])


def test_a_run_that_places_orders_gets_a_task_of_its_own(user_a, paper, monkeypatch):
    sent = _queued(monkeypatch)
    rule = webhook_rule(user_a, paper)  # places an order
    run = rule_event_record(rule_id=rule.pk, user_id=user_a.pk, event_id="o-1", event=EVENT)
    assert sent == [("automation.run_execute", [run.pk, user_a.pk])]


def test_a_drain_hands_a_run_that_cannot_be_done_whole_to_a_task_of_its_own(user_a, paper, monkeypatch, settings):
    from automation.services import runs_drain

    settings.AUTOMATION_DRAIN_SLOTS = 1
    sent = _queued(monkeypatch)
    rule = _notify_rule(user_a, paper)
    run = rule_event_record(rule_id=rule.pk, user_id=user_a.pk, event_id="h-1", event=EVENT)
    with tenant(user_a.pk):  # the rule places orders now (as an edit since the run was recorded would)
        from tests.automation.conftest import order_action

        Rule.objects.filter(pk=rule.pk).update(actions=[order_action(paper)])
    assert runs_drain(slot=0) == 0
    assert sent[-1] == ("automation.run_execute", [run.pk, user_a.pk])
    with tenant(user_a.pk):
        assert RuleRun.objects.get(pk=run.pk).status == "pending"  # untouched: its own task carries it out


def test_two_drains_of_one_slot_at_once_carry_out_each_run_once(user_a, paper, monkeypatch, settings):
    from automation.services import runs_drain

    settings.AUTOMATION_DRAIN_SLOTS = 1
    _queued(monkeypatch)
    rule = _notify_rule(user_a, paper)
    runs = [_record(rule, f"t-{i}") for i in range(12)]

    def drain():
        try:
            return runs_drain(slot=0, batch=3)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(lambda _: drain(), range(2)))
    assert sum(done) == 12
    with tenant(user_a.pk):
        assert Notification.objects.filter(user=user_a, kind="automation.rule").count() == 12
        assert RunAction.objects.filter(run__in=[run.pk for run in runs]).count() == 12
        assert set(RuleRun.objects.filter(rule=rule).values_list("status", "attempts")) == {("succeeded", 1)}


def test_the_sweep_rings_the_slots_of_runs_left_pending(user_a, paper, monkeypatch, settings):
    from datetime import timedelta

    from django.utils import timezone

    from automation.services import runs_sweep

    settings.AUTOMATION_DRAIN_SLOTS = 2
    sent = _queued(monkeypatch)
    rule = _notify_rule(user_a, paper)
    old, fresh = _record(rule, "s-old"), _record(rule, "s-fresh")
    assert runs_sweep() == 0  # nothing has waited a minute
    with tenant(user_a.pk):
        RuleRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    sent.clear()
    assert runs_sweep() == 1
    assert sent == [("automation.runs_drain", [_slot_of(old.pk)])]
    assert fresh.status == "pending"


def test_without_the_cache_a_run_gets_a_task_of_its_own(user_a, paper, monkeypatch):
    from automation import services

    sent = _queued(monkeypatch)

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(services.cache, "add", down)
    monkeypatch.setattr(services.cache, "delete", down)
    rule = _notify_rule(user_a, paper)
    run = rule_event_record(rule_id=rule.pk, user_id=user_a.pk, event_id="c-1", event=EVENT)
    assert sent == [("automation.run_execute", [run.pk, user_a.pk])]
    # A drain (queued before the cache went down) carries out its slot's runs all the same.
    assert services.runs_drain(slot=_slot_of(run.pk)) == 1
    with tenant(user_a.pk):
        assert RuleRun.objects.get(pk=run.pk).status == "succeeded"


def test_a_drain_killed_mid_run_is_delivered_again_and_each_run_acts_once(user_a, paper, settings, monkeypatch):
    """A real worker's drain has acted on a pending run (not committed) and waits for the rule's row when it
    is SIGKILLed: nothing of that run is kept, and the drain delivered again does it once (and leaves the
    run done before alone)."""

    settings.AUTOMATION_DRAIN_SLOTS = 1
    monkeypatch.setenv("AUTOMATION_DRAIN_SLOTS", "1")  # the worker's too
    rule = _notify_rule(user_a, paper)
    first = _record(rule, "k-1")
    assert run_execute(run_id=first.pk, user_id=user_a.pk).status == "succeeded"
    second = _record(rule, "k-2")
    queue = f"automation-drain-{os.getpid()}-{second.pk}"
    _killed_while_blocked(table=Rule._meta.db_table, row=rule.pk, task="automation.runs_drain", args=[0],
                          queue=queue, what="the drain did not act and wait on the rule's row")
    assert _notices(user_a, second) == []
    from automation.services import runs_drain

    assert runs_drain(slot=0) == 1  # the redelivered drain
    assert runs_drain(slot=0) == 0
    assert len(_notices(user_a, first)) == 1 and len(_notices(user_a, second)) == 1


def test_a_run_that_breaks_a_drain_is_handed_off_and_the_others_are_done(user_a, paper, monkeypatch, settings):
    """The chunk's batch fails (a bug): rolled back whole, every run goes the single way, where a run whose
    transaction fails is handed to a task of its own and the others are done."""
    from django.db import OperationalError

    from automation import services

    settings.AUTOMATION_DRAIN_SLOTS = 1
    sent = _queued(monkeypatch)
    rule = _notify_rule(user_a, paper)
    broken, fine = _record(rule, "b-1"), _record(rule, "b-2")
    real = services._run_at_once

    def at_once(*, run, now):
        if run.pk == broken.pk:
            raise OperationalError("canceling statement due to lock timeout")
        return real(run=run, now=now)

    def batch_breaks(pending):
        raise KeyError("a bug in the batch")

    monkeypatch.setattr(services, "_runs_together_write", batch_breaks)
    monkeypatch.setattr(services, "_run_at_once", at_once)
    assert services.runs_drain(slot=0) == 1
    assert sent[-1] == ("automation.run_execute", [broken.pk, user_a.pk])
    with tenant(user_a.pk):
        assert RuleRun.objects.get(pk=broken.pk).status == "pending"
        assert RuleRun.objects.get(pk=fine.pk).status == "succeeded"


# --- Drains: notify runs carried out together ----------------------------------------------------------


def _final_state(user, run) -> tuple:
    """What a trader (and the rule's page) sees of a finished run."""
    with tenant(user.pk):
        run = RuleRun.objects.select_related("rule").get(pk=run.pk)
        results = list(RunAction.objects.filter(run=run).values_list("position", "kind", "status", "summary", "detail"))
        notices = [(n.kind, n.message, n.link, n.read_at) for n in _notices(user, run)]
        deliveries = sorted(
            Notification.objects.get(dedup_key=f"automation-run:{run.pk}:0").deliveries.values_list("channel", "status")
        )
        return (run.status, run.detail, run.attempts, run.conditions, run.claimed_at is not None,
                run.finished_at is not None, run.rule.last_run_at == run.finished_at, run.rule.consecutive_failures,
                results, notices, deliveries)


def test_a_drain_carries_out_notify_runs_together_as_the_single_path_would(user_a, user_b, paper, monkeypatch, settings):
    """Several traders' notify runs in one drain: each ends exactly as `run_execute` leaves such a run (the
    same run, result, notification and delivery), with statements for the lot, not per run."""
    from django.test.utils import CaptureQueriesContext

    from automation import services
    from tests.trading.conftest import paper_setup

    settings.AUTOMATION_DRAIN_SLOTS = 1
    _queued(monkeypatch)
    rule_a, rule_b = _notify_rule(user_a, paper), _notify_rule(user_b, paper_setup(user_b))
    alone = _record(rule_a, "single")
    assert run_execute(run_id=alone.pk, user_id=user_a.pk).status == "succeeded"
    expected = _final_state(user_a, alone)
    with tenant(user_a.pk):  # the failure count a success resets
        Rule.objects.filter(pk=rule_a.pk).update(consecutive_failures=2)
    runs = [(user_a, _record(rule_a, f"a-{i}")) for i in range(6)] + [(user_b, _record(rule_b, f"b-{i}")) for i in range(6)]
    with CaptureQueriesContext(connections["default"]) as executed:
        assert services.runs_drain(slot=0) == 12
    for user, run in runs:
        state = _final_state(user, run)
        assert state[:9] == expected[:9] and state[10] == expected[10]
        assert state[9] == [(kind, message, f"/automation/{run.rule_id}/runs/{run.pk}/", read)
                             for kind, message, _, read in expected[9]]
    assert len(executed.captured_queries) < 12 * 3, [q["sql"][:60] for q in executed.captured_queries]


def test_a_drain_sends_runs_it_cannot_batch_the_single_way(user_a, paper, monkeypatch, settings):
    """A rule with conditions and a dry-run rule, drained with a plain notify run: all three finished, each as
    its own kind of run finishes."""
    from automation import services

    settings.AUTOMATION_DRAIN_SLOTS = 1
    _queued(monkeypatch)
    portfolio, _ = paper
    def scheduled(**fields):
        with tenant(user_a.pk):
            return rule_create(user=user_a, trigger_kind="schedule", trigger={"cron": "0 9 * * *"}, actions=[NOTIFY],
                               **fields)

    plain = _record(_notify_rule(user_a, paper), "plain")
    conditioned = _record(scheduled(name="Whales only", conditions=[
        {"kind": "portfolio_value", "portfolio_id": portfolio.pk, "op": ">", "value": "1000000000"}]), "conditioned")
    dry = _record(scheduled(name="Rehearsal", dry_run=True), "dry")
    assert services.runs_drain(slot=0) == 3
    with tenant(user_a.pk):
        statuses = dict(RuleRun.objects.filter(pk__in=[plain.pk, conditioned.pk, dry.pk]).values_list("pk", "status"))
    assert statuses[plain.pk] == "succeeded" and statuses[dry.pk] == "dry_run"
    assert statuses[conditioned.pk] == "conditions_not_met"
    assert len(_notices(user_a, plain)) == 1 and _notices(user_a, dry) == []
