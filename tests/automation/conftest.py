"""Fixtures for the automation tests: a funded paper portfolio and connection with a BTC quote, Celery eager
where a test wants the queued runs carried out, and helpers to build rules through the services."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from automation.services import rule_create, run_execute
from config.celery import app as celery_app
from core.rls import tenant
from tests.trading.conftest import btc_quote, instruments, paper_setup, set_quote  # noqa: F401

TEMPLATE = {"ticker": "{{ticker}}", "action": "{{strategy.order.action}}", "contracts": "{{strategy.order.contracts}}"}


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = False


@pytest.fixture
def paper(user_a, btc_quote):  # noqa: F811
    return paper_setup(user_a)


def order_action(paper, **overrides) -> dict:
    portfolio, connection = paper
    return {"kind": "place_order", "connection_id": connection.pk, "portfolio_id": portfolio.pk,
            "symbol": "{{ticker}}", "side": "{{strategy.order.action}}", "order_type": "market",
            "quantity": "{{strategy.order.contracts}}", **overrides}


def webhook_rule(user, paper, **fields):
    values = {"name": "TradingView", "trigger_kind": "webhook", "trigger": {"template": TEMPLATE},
              "actions": [order_action(paper)], "daily_order_cap": "100000", **fields}
    with tenant(user.pk):
        return rule_create(user=user, **values)


def tv_body(rule, *, event_id="evt-1", ticker="BTCUSDT", action="buy", contracts="0.01", token=None, at=None) -> dict:
    return {"token": rule.secret if token is None else token, "id": event_id,
            "timestamp": int(at if at is not None else time.time()), "ticker": ticker, "action": action,
            "contracts": contracts}


def post_hook(client, rule, body, *, signed=False, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {}
    if signed:
        headers["HTTP_X_NEXUS_SIGNATURE"] = "sha256=" + hmac.new(rule.secret.encode(), data, hashlib.sha256).hexdigest()
    return client.post(f"/automation/hooks/{rule.webhook_token}/", data=data, content_type="application/json",
                       **headers)


def run_twice_at_once(run, user) -> list[str]:
    """Two workers executing the same run at the same moment; each one's resulting status."""

    def execute() -> str:
        try:
            return run_execute(run_id=run.pk, user_id=user.pk).status
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda _: execute(), range(2)))
