"""Triggers from the events other apps send (an alert found by the tick evaluator, an order fill, a regime
change), the plan limits, the REST API, tenant isolation and the demo rules."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.apps import apps

from alerts.evaluator import Evaluator
from alerts.models import Alert
from automation.models import Rule, RuleRun
from automation.selectors import rule_list
from automation.services import rule_create
from core.errors import DomainError
from core.rls import system_context, tenant
from marketdata.types import TickEvent
from tests.automation.conftest import webhook_rule
from tests.factories import RuleFactory, api_token_for
from trading.events import orders_filled, regime_changed

NOTIFY = [{"kind": "notify", "message": "{{symbol}} at {{price}}"}]


def _runs(user) -> list[RuleRun]:
    with tenant(user.pk):
        return list(RuleRun.objects.filter(user=user).order_by("id"))


def test_a_price_rule_is_an_alert_the_tick_evaluator_finds(user_a, btc_quote):
    with tenant(user_a.pk):
        rule = rule_create(user=user_a, name="Breakout", trigger_kind="price",
                           trigger={"symbol": "BTC/USDT", "direction": "above", "price": "21000"}, actions=NOTIFY)
        alert = Alert.objects.get(pk=rule.alert_id)
        assert (alert.kind, alert.threshold, alert.repeat) == ("price_above", Decimal("21000"), True)
    evaluator = Evaluator()
    evaluator.load()
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    evaluator.process([TickEvent(symbol="BTC/USDT", price=Decimal("21050"), previous_price=Decimal("20990"), at=at)])
    [run] = _runs(user_a)
    assert run.event_id.startswith("alert-firing:") and run.event["price"] == "21050"


def test_order_fills_and_regime_changes_record_one_run_per_event(user_a, user_b, btc_quote):
    with tenant(user_a.pk):
        filled = rule_create(user=user_a, name="Fills", trigger_kind="order_filled", trigger={"symbol": "BTC/USDT"},
                             actions=NOTIFY)
    with tenant(user_b.pk):
        regime = rule_create(user=user_b, name="Bear", trigger_kind="regime_change",
                             trigger={"symbol": "BTC/USDT", "regime": "bearish"}, actions=NOTIFY)
    fill = {"order_id": "o-1", "user_id": user_a.pk, "symbol": "BTC/USDT", "side": "buy",
            "quantity": Decimal("0.1"), "price": Decimal("20000")}
    orders_filled.send(sender=None, fills=[fill])
    orders_filled.send(sender=None, fills=[fill])  # delivered twice
    change = {"symbol": "BTC/USDT", "previous": "sideways", "reading_id": 7, "as_of": datetime(2026, 11, 30, tzinfo=UTC)}
    regime_changed.send(sender=None, regime="bullish", **change)  # not the regime the rule waits for
    regime_changed.send(sender=None, regime="bearish", **change)
    assert [(r.rule_id, r.event_id) for r in _runs(user_a)] == [(filled.pk, "order:o-1")]
    assert [(r.rule_id, r.event_id) for r in _runs(user_b)] == [(regime.pk, "regime:7:bearish")]


def test_plan_limits_count_rules_and_webhook_triggers(user_a, paper):
    webhook_rule(user_a, paper)
    with pytest.raises(DomainError, match="webhook-triggered rule"):
        webhook_rule(user_a, paper)
    with tenant(user_a.pk):
        for i in range(2):
            rule_create(user=user_a, name=f"r{i}", trigger_kind="schedule", trigger={"cron": "0 9 * * *"}, actions=NOTIFY)
        with pytest.raises(DomainError, match="automation rule"):
            rule_create(user=user_a, name="one too many", trigger_kind="schedule", trigger={"cron": "0 9 * * *"},
                        actions=NOTIFY)


def test_the_form_shows_what_is_wrong_under_the_field(client, user_a, paper):
    client.force_login(user_a)
    response = client.post("/automation/new/", {"name": "Cron", "trigger_kind": "schedule", "trigger_cron": "99 * * *",
                                                "actions-0_kind": "notify", "actions-0_message": "hi",
                                                "max_runs_per_hour": "10"})
    assert response.status_code == 422
    assert "A cron expression has five fields" in response.content.decode()


def test_the_api_creates_tests_pauses_and_lists_runs(client, user_a, paper):
    portfolio, connection = paper
    auth = {"HTTP_AUTHORIZATION": f"Token {api_token_for(user_a)}"}
    created = client.post("/api/v1/automation/rules/", content_type="application/json", data={
        "name": "API rule", "trigger_kind": "webhook",
        "trigger": {"template": {"ticker": "{{ticker}}", "side": "{{side}}"}},
        "actions": [{"kind": "place_order", "connection_id": connection.pk, "portfolio_id": portfolio.pk,
                     "symbol": "{{ticker}}", "side": "{{side}}", "order_type": "market", "quantity": "0.01"}],
        "daily_order_cap": "500",
    }, **auth)
    assert created.status_code == 201, created.json()
    rule = created.json()
    assert rule["webhook_path"].startswith("/automation/hooks/")
    tested = client.post(f"/api/v1/automation/rules/{rule['id']}/test/", content_type="application/json",
                         data={"event": {"ticker": "BTCUSDT", "side": "buy"}}, **auth)
    assert tested.status_code == 201
    assert tested.json()["status"] == "dry_run"
    assert tested.json()["results"][0]["summary"].startswith("Would buy 0.01 BTC/USDT")
    paused = client.post(f"/api/v1/automation/rules/{rule['id']}/pause/", **auth)
    assert paused.json()["status"] == "paused"
    assert client.post(f"/api/v1/automation/rules/{rule['id']}/resume/", **auth).json()["status"] == "active"
    runs = client.get(f"/api/v1/automation/rules/{rule['id']}/runs/", **auth).json()["results"]
    assert [run["status"] for run in runs] == ["dry_run"]
    detail = client.get(f"/api/v1/automation/runs/{runs[0]['id']}/", **auth)
    assert detail.json()["event"] == {"ticker": "BTCUSDT", "side": "buy"}
    bad = client.post("/api/v1/automation/rules/", content_type="application/json", data={
        "name": "x", "trigger_kind": "schedule", "trigger": {"cron": "0 9 * * *"},
        "actions": [{"kind": "webhook_call", "url": "ftp://example.com"}]}, **auth)
    assert bad.status_code == 400 and bad["Content-Type"] == "application/problem+json"
    assert "https://" in str(bad.json()["errors"])


def test_another_traders_rules_and_runs_are_out_of_reach(client, user_a, user_b):
    rule = RuleFactory(user=user_a)
    with tenant(user_b.pk):
        assert not Rule.objects.filter(pk=rule.pk).exists()
    client.force_login(user_b)
    assert client.get(f"/automation/{rule.pk}/").status_code == 404
    auth = {"HTTP_AUTHORIZATION": f"Token {api_token_for(user_b)}"}
    assert client.get(f"/api/v1/automation/rules/{rule.pk}/", **auth).status_code == 404
    assert client.post(f"/api/v1/automation/rules/{rule.pk}/pause/", **auth).status_code == 404


def test_the_demo_trader_gets_a_webhook_rule_and_a_regime_rule(user_a, instruments):
    with system_context(reason="test: seed_demo"):
        for app in ("portfolios", "trading", "automation", "automation"):
            apps.get_app_config(app).seed_demo(trader=user_a, stdout=io.StringIO())
    with tenant(user_a.pk):
        kinds = sorted(rule_list(user=user_a).values_list("trigger_kind", flat=True))
    assert kinds == ["regime_change", "webhook"]


def test_the_gatekeeper_announces_a_regime_change_once_and_a_rule_runs_on_it(user_a, instruments):
    from tests.factories import RegimeReadingFactory
    from trading.decisions.services import regime_current

    btc = instruments["BTC/USDT"]
    hour = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    RegimeReadingFactory(instrument=btc, timeframe="1h", as_of=hour.replace(hour=9), regime="bullish")
    with tenant(user_a.pk):
        rule = rule_create(user=user_a, name="Any change", trigger_kind="regime_change",
                           trigger={"symbol": "BTC/USDT"}, actions=NOTIFY)
    for _ in range(2):  # the second classification of the same bar changes nothing
        with system_context(reason="tests: the signal engine classifies the pair"):
            reading = regime_current(instrument=btc, as_of=hour)  # no hourly candles: sideways
    [run] = _runs(user_a)
    assert (run.rule_id, run.event_id) == (rule.pk, f"regime:{reading.pk}:sideways")
    assert (run.event["previous"], run.event["regime"]) == ("bullish", "sideways")
