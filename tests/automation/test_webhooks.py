"""Incoming webhooks: the secret token or the HMAC signature, replays, malformed bodies, and a good delivery that
places a paper order the trader sees in their orders and positions."""

from __future__ import annotations

import json
import time
from decimal import Decimal

from automation.models import RuleRun
from core.rls import tenant
from portfolios.selectors import position_list
from tests.automation.conftest import post_hook, tv_body, webhook_rule
from trading.orders.selectors import order_list


def _runs(user) -> list[RuleRun]:
    with tenant(user.pk):
        return list(RuleRun.objects.filter(user=user))


def test_a_wrong_secret_is_refused_with_403_and_records_nothing(client, user_a, paper):
    rule = webhook_rule(user_a, paper)
    response = post_hook(client, rule, tv_body(rule, token="not-the-secret"))
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert "secret token" in response.json()["detail"]
    assert _runs(user_a) == []


def test_a_bad_signature_is_refused_and_a_good_one_accepted(client, user_a, paper):
    rule = webhook_rule(user_a, paper)
    body = tv_body(rule, token="")
    bad = post_hook(client, rule, body, raw=json.dumps(body).encode(), signed=False)
    assert bad.status_code == 403
    data = json.dumps(body).encode()
    forged = client.post(f"/automation/hooks/{rule.webhook_token}/", data=data, content_type="application/json",
                         HTTP_X_NEXUS_SIGNATURE="sha256=" + "0" * 64)
    assert forged.status_code == 403
    assert "X-Nexus-Signature" in forged.json()["detail"]
    assert post_hook(client, rule, body, signed=True).status_code == 202


def test_a_replayed_event_id_is_refused_with_409(client, user_a, paper):
    rule = webhook_rule(user_a, paper)
    assert post_hook(client, rule, tv_body(rule, event_id="same")).status_code == 202
    again = post_hook(client, rule, tv_body(rule, event_id="same"))
    assert again.status_code == 409
    assert "already received" in again.json()["detail"]
    assert len(_runs(user_a)) == 1


def test_an_old_timestamp_is_refused_as_a_replay(client, user_a, paper):
    rule = webhook_rule(user_a, paper)
    response = post_hook(client, rule, tv_body(rule, at=time.time() - 3600))
    assert response.status_code == 409
    assert "replay" in response.json()["detail"]
    assert _runs(user_a) == []


def test_malformed_bodies_get_400_with_a_clear_message(client, user_a, paper):
    rule = webhook_rule(user_a, paper)
    not_json = post_hook(client, rule, None, raw=b"{ticker: BTCUSDT")
    assert not_json.status_code == 400
    assert not_json["Content-Type"] == "application/problem+json"
    assert "not valid JSON" in not_json.json()["detail"]
    body = tv_body(rule)
    del body["action"]
    missing = post_hook(client, rule, body)
    assert missing.status_code == 400
    assert missing.json()["detail"] == (
        "The body has no field 'action' (the template expects {{strategy.order.action}} there)."
    )
    no_id = tv_body(rule)
    del no_id["id"]
    assert "'id'" in post_hook(client, rule, no_id).json()["detail"]
    assert _runs(user_a) == []


def test_an_unknown_url_is_404(client, user_a, paper):
    response = client.post("/automation/hooks/nope/", data=b"{}", content_type="application/json")
    assert response.status_code == 404


def test_a_good_delivery_runs_the_rule_and_places_a_paper_order(client, user_a, paper, eager):
    portfolio, _ = paper
    rule = webhook_rule(user_a, paper)
    response = post_hook(client, rule, tv_body(rule, ticker="BINANCE:BTCUSDT", contracts="0.01"))
    assert response.status_code == 202
    with tenant(user_a.pk):
        [run] = RuleRun.objects.filter(user=user_a)
        assert run.status == "succeeded", run.detail
        [order] = order_list(user=user_a)
        assert (order.side, order.status, order.quantity, order.source) == ("buy", "filled", Decimal("0.01"), "automation")
        [position] = position_list(portfolio=portfolio)
        assert position.instrument.symbol == "BTC/USDT" and position.quantity == Decimal("0.01")
        [result] = run.results.all()
        assert result.order_id == order.pk and result.summary.startswith("Bought 0.01 BTC/USDT")
    client.force_login(user_a)
    page = client.get(f"/automation/{rule.pk}/runs/{run.pk}/")
    assert "Bought 0.01 BTC/USDT" in page.content.decode()
