"""Browser: a trader creates a TradingView webhook rule on /automation, the webhook arrives, and the run and
its paper order show on the pages (the form also fits a 375 px screen)."""

from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest
from playwright.sync_api import expect

from automation.models import RuleRun
from automation.tasks import run_execute_task
from core.rls import tenant
from marketdata.services import instruments_seed
from tests.e2e.conftest import log_in
from tests.factories import UserFactory
from tests.trading.conftest import paper_setup, set_quote

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])

TEMPLATE = '{"ticker": "{{ticker}}", "action": "{{strategy.order.action}}", "contracts": "{{strategy.order.contracts}}"}'


def test_a_webhook_rule_made_on_the_page_runs_and_places_a_paper_order(page, asgi_server):
    user = UserFactory(email="automation-e2e@example.com")
    instruments_seed()
    set_quote("BTC/USDT", "20000", bid="19999", ask="20001")
    paper_setup(user)

    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, user.email)
    page.goto("/automation/")
    expect(page.get_by_role("heading", name="Automation", exact=True)).to_be_visible()
    page.get_by_role("link", name="New rule").first.click()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    page.get_by_label("Name").fill("TradingView BTC")
    page.get_by_label("When").select_option("webhook")
    page.get_by_label("Webhook template").fill(TEMPLATE)
    page.locator("#id_actions-0_kind").select_option("place_order")
    page.locator("#id_actions-0_connection").select_option(label="Paper")
    page.locator("#id_actions-0_portfolio").select_option(label="Paper")
    page.locator("#id_actions-0_symbol").fill("{{ticker}}")
    page.locator("#id_actions-0_side").fill("{{strategy.order.action}}")
    page.locator("#id_actions-0_order_type").select_option("market")
    page.locator("#id_actions-0_quantity").fill("{{strategy.order.contracts}}")
    page.get_by_label("Daily order cap").fill("1000")
    page.get_by_role("button", name="Create rule").click()
    expect(page.get_by_text("Rule created: TradingView BTC.")).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375

    hook_url = page.locator("#webhook-url").inner_text()
    secret = page.locator("#webhook-secret").inner_text()
    body = {"token": secret, "id": "BTCUSDT-1", "timestamp": int(time.time()), "ticker": "BTCUSDT",
            "action": "buy", "contracts": "0.01"}
    assert hook_url.startswith(f"{asgi_server.url}/automation/hooks/")
    request = urllib.request.Request(  # noqa: S310 - the test server
        hook_url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test server
        assert response.status == 202
        run_id = json.loads(response.read())["run"]
    # The Celery worker's job: the queued run, carried out by the same task.
    run_execute_task(run_id, user.pk)
    with tenant(user.pk):
        assert RuleRun.objects.get(pk=run_id).status == "succeeded"

    page.reload()
    page.get_by_role("link", name=re.compile("TradingView BTC")).first.click()
    expect(page.locator("#run-status")).to_have_text("Succeeded")
    expect(page.locator("#run-results")).to_contain_text("Bought 0.01 BTC/USDT")
    page.goto("/trading/orders/history/")
    expect(page.locator("main")).to_contain_text("Automation rule")
