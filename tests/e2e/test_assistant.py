"""Browser: the /assistant page answers "how is my BTC position?" with the dashboard's own figures, and the
answer streams in over the page's WebSocket while the question's POST is still open.

The POST's response is held back (Playwright fetches it from the server, then keeps it) until the answer
has arrived through the socket: what the page shows by then came only from the stream. The daphne
subprocess answers with the offline provider (no OPENAI_API_KEY in tests).
"""

from __future__ import annotations

import re
import time
from decimal import Decimal
from uuid import uuid4

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from core.rls import system_context, tenant
from marketdata.models import Quote
from marketdata.services import instruments_seed
from portfolios.services import portfolio_create, transaction_record
from tests.e2e.conftest import log_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])

RECORDER = """
window.nexusStream = [];
document.addEventListener('htmx:wsOpen', function () { window.nexusWsOpen = true; });
document.addEventListener('htmx:wsBeforeMessage', function (event) {
  if (event.detail.message.indexOf('<template data-ws-for="pending-') === 0) {
    window.nexusStream.push(event.detail.message);
  }
});
"""


def _poll(page, check, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(50)


def _console_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def _seed_btc_holder():
    btc = {i.symbol: i for i in instruments_seed()}["BTC/USDT"]
    now = timezone.now()
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Quote.objects.update_or_create(
            instrument=btc,
            defaults={"price": Decimal("23417.25"), "source": "test", "at": now, "updated_at": now},
        )
    trader = UserFactory(email=f"assistant-{uuid4().hex[:8]}@example.com")
    with tenant(trader.pk):
        portfolio = portfolio_create(user=trader, name="Spot", base_currency="USDT")
        transaction_record(
            user=trader,
            portfolio=portfolio,
            kind="deposit",
            currency="USDT",
            quantity=Decimal("20000"),
            executed_at=now,
        )
        transaction_record(
            user=trader,
            portfolio=portfolio,
            kind="buy",
            instrument=btc,
            quantity=Decimal("0.375"),
            price=Decimal("21000"),
            executed_at=now,
        )
    return trader


def test_the_assistant_answers_with_the_dashboards_figures_streamed_without_a_reload(page, browser):
    trader = _seed_btc_holder()
    page.context.add_init_script(RECORDER)  # every tab of the context records its stream
    errors = _console_errors(page)
    log_in(page, trader.email)

    # What the dashboard shows for the position.
    row = page.locator('tr[data-symbol="BTC/USDT"]')
    expect(row).to_be_visible()
    cells = row.locator("td")
    quantity = cells.nth(0).inner_text().strip()
    value = cells.nth(3).inner_text().strip()
    pnl = cells.nth(4).inner_text().split()[0]
    assert (quantity, value, pnl) == ("0.375", "8,781.47", "+906.47")  # 0.375 x 23,417.25; minus 7,875 cost

    # A second tab on the dashboard receives the same stream over its own socket and must ignore it.
    other_tab = page.context.new_page()
    other_errors = _console_errors(other_tab)
    other_tab.goto("/dashboard/")
    _poll(
        other_tab, lambda: other_tab.evaluate("() => window.nexusWsOpen === true"), "the other tab's socket"
    )

    page.get_by_role("navigation", name="Primary").get_by_role("link", name="Assistant").click()
    expect(page).to_have_url(re.compile(r"/assistant/$"))
    expect(page.get_by_role("heading", name="Assistant", exact=True)).to_be_visible()
    _poll(page, lambda: page.evaluate("() => window.nexusWsOpen === true"), "the page's WebSocket")
    page.evaluate("() => { document.documentElement.dataset.loadMarker = 'same page'; }")

    held = {}

    def hold(route):
        held["response"] = route.fetch()
        held["route"] = route

    page.route("**/assistant/ask/", hold)
    ask_id = page.locator("#ask-form input[name=ask_id]").input_value().replace("-", "")
    page.get_by_label("Your question").fill("how is my BTC position?")
    page.get_by_role("button", name="Ask", exact=True).click()

    # The question shows at once; the answer streams into its placeholder while the POST is held.
    turn = page.locator(f"#turn-{ask_id}")
    expect(turn.locator(".said-user")).to_contain_text("how is my BTC position?")
    _poll(page, lambda: "route" in held, "the question's POST")
    assert held["response"].status == 200
    streamed = page.locator(f"#pending-{ask_id}-text")
    for figure in (quantity, value, pnl):
        expect(streamed).to_contain_text(figure)
    expect(page.locator(f"#pending-{ask_id}-tools")).to_contain_text("Looking up your BTC position")
    streamed_text = streamed.inner_text()

    held["route"].fulfill(response=held["response"])

    # The response's finished turn replaces the placeholder: the same answer, now formatted, on the same page.
    answer = turn.locator(".said-assistant")
    expect(page.locator(f"#pending-{ask_id}")).to_have_count(0)
    expect(answer).to_contain_text(f"{quantity} BTC")
    for figure in (quantity, value, pnl):
        expect(answer).to_contain_text(figure)
    assert " ".join(answer.locator(".said-text").inner_text().split()) == " ".join(streamed_text.split())
    expect(answer).to_contain_text("Looked up: position")
    expect(page.locator("html[data-load-marker='same page']")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/assistant/\d+/$"))
    expect(page.locator("#assistant-remaining")).to_contain_text("24 AI queries left this month")
    expect(page.locator("#conversation-list")).to_contain_text("how is my BTC position?")
    assert page.evaluate("() => window.nexusStream.length") >= 2
    # The other tab got the same fragments over its own socket, and dropped them.
    _poll(
        other_tab,
        lambda: other_tab.evaluate("() => window.nexusStream.length") >= 2,
        "the other tab's stream",
    )

    # The form is fresh and focused for the next question; a suggested question asks itself.
    expect(page.get_by_label("Your question")).to_have_value("")
    page.unroute("**/assistant/ask/")
    page.get_by_role("button", name="What is the price of BTC/USDT?").click()
    expect(page.locator("#turns .turn").last).to_contain_text("23,417.25")
    expect(page.locator("#turns .turn")).to_have_count(2)

    # A bad question is refused next to the field and leaves no placeholder behind.
    page.get_by_label("Your question").fill("   ")
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator("#id_question_error")).to_have_text("Type a question first.")
    expect(page.get_by_label("Your question")).to_be_focused()
    expect(page.locator("#turns .turn")).to_have_count(2)

    other_tab.close()
    assert errors == [], f"/assistant logged console errors: {errors}"
    assert other_errors == [], (
        f"the dashboard logged console errors while the answer streamed: {other_errors}"
    )


def test_the_assistant_page_fits_a_phone_confirms_a_proposed_alert_and_deletes_a_conversation(page):
    trader = _seed_btc_holder()
    errors = _console_errors(page)
    page.set_viewport_size({"width": 375, "height": 812})
    log_in(page, trader.email)
    page.goto("/assistant/")
    page.get_by_label("Your question").fill("How is my portfolio doing?")
    page.get_by_label("Your question").press("Enter")
    expect(page.locator("#turns .said-assistant")).to_contain_text("Spot")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375

    # A proposed write waits for the button; Confirm does it, once.
    page.get_by_label("Your question").fill("Alert me when BTC/USDT rises above 30000")
    page.get_by_role("button", name="Ask", exact=True).click()
    confirm = page.locator("#turns .confirm")
    expect(confirm).to_contain_text("Waiting for you:")
    confirm.get_by_role("button", name="Confirm").click()
    expect(page.locator("#turns")).to_contain_text("Done:")
    expect(page.locator("#turns .confirm")).to_have_count(0)
    page.goto("/alerts/")
    expect(page.locator("#alert-rows")).to_contain_text("30,000")
    page.goto("/assistant/")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375

    page.get_by_role("link", name=re.compile(r"^Delete conversation")).click()
    expect(page.get_by_role("heading", name="Delete this conversation?")).to_be_visible()
    page.get_by_role("button", name="Delete conversation").click()
    expect(page).to_have_url(re.compile(r"/assistant/$"))
    expect(page.get_by_text("No conversations yet.")).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    assert errors == [], f"/assistant logged console errors: {errors}"
