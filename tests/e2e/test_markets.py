"""Markets in a real browser: the feed process replays recorded data and the page moves without reload."""

from __future__ import annotations

import time

from playwright.sync_api import expect


def test_markets_page_shows_prices_changing_without_reload(page, market_feed):
    page.goto("/markets")
    price = page.locator("#q-BTC-USDT-price")
    expect(price).not_to_have_text("—")
    page.evaluate("window.__sameDocument = true")
    seen = {price.inner_text()}
    deadline = time.monotonic() + 20
    while len(seen) < 4 and time.monotonic() < deadline:
        page.wait_for_timeout(250)
        seen.add(price.inner_text())
    assert len(seen) >= 4, f"the BTC/USDT price did not move: {seen}"
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    expect(page.locator("#q-BTC-USDT-state")).to_be_hidden()  # live, not stale
    expect(page.locator("#q-SOL-USDT-price")).to_have_text("—")  # not fed in this test
    # The sparkline follows the live price.
    points = page.locator('svg[data-sparkline="BTC-USDT"] polyline').get_attribute("points")
    assert len(points.split()) >= 2
    expect(
        page.get_by_role("navigation", name="Primary").get_by_role("link", name="Markets")
    ).to_have_attribute("aria-current", "page")


def test_market_chart_draws_and_the_ticker_moves(page, market_feed):
    page.goto("/markets/BTC-USDT")
    expect(page.get_by_role("heading", name="BTC/USDT", exact=True)).to_be_visible()
    expect(page.locator("#market-chart canvas").first).to_be_visible()
    ticker = page.locator(".ticker-BTC-USDT .ticker-price")
    first = ticker.inner_text()
    expect(ticker).not_to_have_text(first, timeout=15000)
    page.get_by_role("link", name="1h").click()
    expect(page.get_by_role("link", name="1h")).to_have_attribute("aria-current", "page")
    expect(page.locator("#market-chart canvas").first).to_be_visible()
