"""Pages a trader sees, whatever page is open and whatever the screen: no console errors from pushes meant
for other pages, and no sideways scrolling on a phone."""

from __future__ import annotations

import re
from decimal import Decimal
from uuid import uuid4

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from core.rls import tenant
from portfolios.services import portfolio_create, transaction_record
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])

# Counts the WebSocket messages the page has handled, so a test waits for a push instead of sleeping.
COUNT_MESSAGES = (
    "document.addEventListener('htmx:wsOpen', () => { document.documentElement.dataset.wsOpen = '1'; });"
    "document.addEventListener('htmx:wsAfterMessage', () => {"
    " const root = document.documentElement; root.dataset.wsMessages = String(Number(root.dataset.wsMessages || 0) + 1);"
    "});"
)


def _log_in(page, email: str, password: str = DEFAULT_PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.locator("#id_password").fill(password)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))


def _console_problems(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


@pytest.mark.parametrize("path", ["/alerts/", "/trading/", "/settings/"])
def test_portfolio_pushes_reaching_another_page_log_no_console_errors(page, path):
    trader = UserFactory(email=f"away-{uuid4().hex[:8]}@example.com")
    with tenant(trader.pk):
        portfolio = portfolio_create(user=trader, name="Away", base_currency="USDT")
    page.add_init_script(COUNT_MESSAGES)
    problems = _console_problems(page)
    _log_in(page, trader.email)  # the dashboard marks the trader as watching: pushes follow them
    page.goto(path)
    expect(page.locator("html[data-ws-open]")).to_have_count(1)
    assert page.locator(f"#pf-{portfolio.pk}-stats").count() == 0

    with tenant(trader.pk):
        transaction_record(
            user=trader,
            portfolio=portfolio,
            kind="deposit",
            currency="USDT",
            quantity=Decimal("100"),
            executed_at=timezone.now(),
        )
    # The push (stats, positions, allocation, live point, recent) arrived and was handled on this page.
    expect(page.locator("html[data-ws-messages]")).to_have_count(1, timeout=15_000)
    assert not problems, f"console errors on {path} while a portfolio push arrived: {problems}"
