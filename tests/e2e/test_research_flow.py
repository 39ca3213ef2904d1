"""Browser: a trader writes a note with a chart of stored candles, previews and publishes it, finds it by
search, and sees it on the instrument's market page; the research pages fit a 375 px phone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from core.rls import system_context
from marketdata.models import Candle, Instrument
from tests.e2e.conftest import log_in
from tests.factories import SubscriptionFactory, UserFactory
from tests.trading.market_data import minute_bars

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])


def _market_with_march_2023_candles() -> None:
    start, end = datetime(2023, 3, 10, tzinfo=UTC), datetime(2023, 3, 13, tzinfo=UTC)
    with system_context(reason="tests: the market feed's shared data"):
        btc = Instrument.objects.create(symbol="BTC/USDT", base="BTC", quote="USDT", price_precision=2)
        Candle.objects.bulk_create(
            [Candle(instrument=btc, open_time=b.open_time, open=b.open, high=b.high, low=b.low, close=b.close,
                    volume=b.volume) for b in minute_bars("BTCUSDT") if start <= b.open_time < end],
            batch_size=5000,
        )


def test_write_a_note_with_a_chart_publish_it_find_it_and_see_it_on_the_market_page(page):
    user = UserFactory(email="research-e2e@example.com", display_name="Rhea Search")
    SubscriptionFactory(user=user)
    _market_with_march_2023_candles()
    log_in(page, user.email)

    page.get_by_role("navigation", name="Primary").get_by_role("link", name="Research").click()
    expect(page.get_by_role("heading", name="My research notes")).to_be_visible()
    page.get_by_role("link", name="New note").click()
    page.get_by_label("Title").fill("Capitulation below 20k")
    page.get_by_label("Note (Markdown)").fill("Sellers **exhausted** near 19,600.\n\n- reclaim of 20k\n- <script>x</script>")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#note-preview strong")).to_have_text("exhausted")
    expect(page.locator("#note-preview")).to_contain_text("<script>x</script>")  # shown as text
    page.get_by_label("Tags").fill("capitulation, svb")
    page.get_by_label("BTC/USDT").check()
    page.get_by_label("Chart", exact=True).select_option("BTC/USDT")
    page.get_by_label("Chart interval").select_option("1h")
    page.get_by_label("Chart from (UTC)").fill("2023-03-10T00:00")
    page.get_by_label("Chart to (UTC)").fill("2023-03-13T00:00")
    page.get_by_label("Chart description").fill("Hourly candles: a flush to 19,565 on 10 March, then a rally.")
    page.get_by_role("button", name="Save note").click()

    expect(page.get_by_text("Note saved. It is private until you publish it.")).to_be_visible()
    chart = page.get_by_role("img", name="BTC/USDT 1h candlestick chart")
    expect(chart).to_be_visible()
    expect(chart.locator("canvas").first).to_be_visible()  # drawn by Lightweight Charts
    expect(page.locator("figcaption")).to_contain_text("a flush to 19,565")
    expect(page.locator("figcaption")).to_contain_text("low 19565.4")  # the text alternative's figures

    page.get_by_label("Readable by").select_option("members")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published. Every signed-in member can read it now.")).to_be_visible()

    page.get_by_role("link", name="Search", exact=True).click()
    page.get_by_label("Search", exact=True).fill("capitulation")
    page.get_by_role("button", name="Search").click()
    result = page.locator(".search-hit").first
    expect(result).to_contain_text("Capitulation below 20k")
    result.get_by_role("link", name="Capitulation below 20k").click()
    expect(page.get_by_role("heading", name="Capitulation below 20k")).to_be_visible()
    expect(page.get_by_text("by Rhea Search")).to_be_visible()

    page.goto("/markets/BTC-USDT")
    research = page.locator("#market-notes")
    expect(research).to_contain_text("Research on BTC/USDT")
    expect(research.get_by_role("link", name="Capitulation below 20k")).to_be_visible()


def test_the_research_pages_fit_a_phone(page):
    user = UserFactory(email="research-phone@example.com")
    SubscriptionFactory(user=user)
    _market_with_march_2023_candles()
    page.set_viewport_size({"width": 375, "height": 812})
    log_in(page, user.email)
    page.goto("/research/new/")
    page.get_by_label("Title").fill("A rather long title that should wrap on a small phone screen nicely")
    page.get_by_label("BTC/USDT").check()
    page.get_by_label("Thesis", exact=True).select_option("long")
    page.get_by_label("Thesis instrument").select_option("BTC/USDT")
    page.get_by_label("Entry").fill("20150")
    page.get_by_label("Target").fill("22000")
    page.get_by_label("Stop").fill("19500")
    page.get_by_label("Horizon (end date, UTC)").fill("2030-03-15")
    page.get_by_label("Chart", exact=True).select_option("BTC/USDT")
    page.get_by_label("Chart interval").select_option("1h")
    page.get_by_label("Chart from (UTC)").fill("2023-03-10T00:00")
    page.get_by_label("Chart to (UTC)").fill("2023-03-13T00:00")
    page.get_by_label("Chart description").fill("Hourly candles.")
    page.get_by_role("button", name="Save note").click()
    expect(page.get_by_text("Note saved.")).to_be_visible()
    note_url = page.url
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published.")).to_be_visible()
    widths = {}
    for path in (note_url, "/research/", "/research/new/", "/research/community/", "/research/search/?q=title",
                 f"/research/authors/{user.pk}/", note_url.replace("/notes/", "/community/"),
                 note_url + "revisions/", "/markets/BTC-USDT"):
        page.goto(path)
        expect(page.locator("main h1").first).to_be_visible()
        widths[path] = page.evaluate("document.documentElement.scrollWidth")
    too_wide = {path: width for path, width in widths.items() if width > 375}
    assert not too_wide, f"pages wider than the 375 px screen: {too_wide}"
