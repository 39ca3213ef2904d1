"""Browser: an Enterprise author composes an issue with a data block, previews it as a recipient sees it,
sends it, and finds it in the public archive; the pages fit a 375 px phone."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core import mail
from playwright.sync_api import expect

from billing.choices import PlanCode
from newsletter.services import issue_deliver
from tests.e2e.conftest import log_in
from tests.factories import SubscriptionFactory, UserFactory
from tests.factories.marketdata import InstrumentFactory, QuoteFactory
from tests.factories.trading import RegimeReadingFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])


def _fits_a_phone(page) -> None:
    page.set_viewport_size({"width": 375, "height": 812})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    page.set_viewport_size({"width": 1280, "height": 900})


def test_compose_preview_send_and_read_in_the_archive(page, browser, asgi_server):
    author = UserFactory(email="desk-e2e@example.com")
    SubscriptionFactory(user=author, plan=PlanCode.ENTERPRISE)
    reader = UserFactory(email="reader-e2e@example.com")
    btc = InstrumentFactory(symbol="BTC/USDT")
    QuoteFactory(instrument=btc, price=Decimal("23140.00"), open_24h=Decimal("23000.00"))
    RegimeReadingFactory(instrument=btc)

    log_in(page, author.email)
    page.get_by_role("navigation", name="Primary").get_by_role("link", name="Newsletter").click()
    expect(page.get_by_role("heading", name="Newsletter studio")).to_be_visible()
    _fits_a_phone(page)
    page.get_by_role("link", name="New issue").click()
    page.get_by_label("Title").fill("Desk notes for the week")
    page.get_by_label("Body").fill("## Where BTC stands\n\n[[regime BTC/USDT]]\n\n[[market-summary BTC/USDT]]\n")
    _fits_a_phone(page)
    page.get_by_role("button", name="Save and preview").click()

    expect(page.get_by_text("Draft saved.")).to_be_visible()
    email = page.frame_locator("iframe[title='The email as a recipient sees it']")
    expect(email.get_by_text("BTC/USDT regime: Bullish")).to_be_visible()
    expect(email.get_by_text("23,140.00 USDT")).to_be_visible()
    expect(email.get_by_role("link", name="Unsubscribe")).to_be_visible()
    _fits_a_phone(page)

    page.get_by_role("button", name="Send now").click()
    expect(page.get_by_text("Sending started.")).to_be_visible()
    issue_id = int(re.search(r"/newsletter/(\d+)/", page.url).group(1))
    report = issue_deliver(issue_id=issue_id)  # what the Celery worker runs
    assert report.sent == 2
    assert sorted(m.to[0] for m in mail.outbox) == [author.email, reader.email]

    page.reload()
    expect(page.locator("#issue-status")).to_have_text("Sent")
    expect(page.locator("#stat-sent")).to_have_text("2")

    visitor = browser.new_context(base_url=asgi_server.url).new_page()
    visitor.goto("/newsletter/archive/")
    visitor.get_by_role("link", name="Desk notes for the week").click()
    expect(visitor.get_by_role("heading", name="Desk notes for the week")).to_be_visible()
    expect(visitor.get_by_text("BTC/USDT regime: Bullish")).to_be_visible()
    _fits_a_phone(visitor)
    visitor.context.close()
