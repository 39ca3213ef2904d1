"""Keyboard only: signing in, placing a paper order and creating an alert with Tab, typing, Enter and Space
(no clicks, no fill()), each focused control showing a visible focus ring. On a phone the dashboard's and
the order ticket's controls are big enough to tap (44 px) and the ticket's button is within a thumb's reach."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from marketdata.services import instruments_seed
from tests.e2e.test_trading_flow import _off_loop
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.trading.conftest import paper_setup, set_quote

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])

FOCUS_RING = """el => {
  const style = getComputedStyle(el);
  return {outline: style.outlineStyle !== 'none' ? parseFloat(style.outlineWidth) : 0, shadow: style.boxShadow};
}"""


def _setup():
    user = UserFactory(email="keyboard-e2e@example.com")
    instruments_seed()
    set_quote("BTC/USDT", "20000", bid="19999", ask="20001")
    paper_setup(user)
    return user


def _tab_to(page, locator, *, limit: int = 80, backwards: bool = False) -> None:
    """Press Tab until `locator` has the focus; it must show a focus ring when it does."""
    target = locator.element_handle()
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        if target.evaluate("el => el === document.activeElement"):
            ring = target.evaluate(FOCUS_RING)
            assert ring["outline"] >= 2 or ring["shadow"] != "none", f"no visible focus on {locator}: {ring}"
            return
    raise AssertionError(f"{locator} is not reachable with the Tab key")


def _log_in_by_keyboard(page, email: str) -> None:
    page.goto("/accounts/login/")
    _tab_to(page, page.get_by_label("Email"))
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    expect(page.locator("#id_password")).to_be_focused()
    page.keyboard.type(DEFAULT_PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/dashboard/$"))


def test_sign_in_with_the_keyboard_only_starting_from_the_skip_link(page):
    user = _off_loop(_setup)
    page.goto("/accounts/login/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    _log_in_by_keyboard(page, user.email)


def test_place_a_paper_order_with_the_keyboard_only(page):
    user = _off_loop(_setup)
    _log_in_by_keyboard(page, user.email)
    page.goto("/trading/")
    _tab_to(page, page.get_by_label("Pair"))
    page.keyboard.type("BTC/USDT")
    expect(page.get_by_label("Pair")).to_have_value("BTC/USDT")
    _tab_to(page, page.get_by_label("Order type"))
    page.keyboard.type("Limit")
    expect(page.get_by_label("Order type")).to_have_value("limit")
    _tab_to(page, page.get_by_label("Quantity"))
    page.keyboard.type("0.1")
    _tab_to(page, page.get_by_label("Limit price"))
    page.keyboard.type("19000")
    _off_loop(set_quote, "BTC/USDT", "20000", bid="19999", ask="20001")
    _tab_to(page, page.get_by_role("button", name="Place order"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Order placed: Buy 0.1 BTC/USDT — open.")


def test_create_an_alert_with_the_keyboard_only(page):
    user = _off_loop(_setup)
    _log_in_by_keyboard(page, user.email)
    page.goto("/alerts/")
    _tab_to(page, page.get_by_label("Alert when"))
    page.keyboard.type("Price rises")
    expect(page.get_by_label("Alert when")).to_have_value("price_above")
    _tab_to(page, page.get_by_label("Market"))
    page.keyboard.type("BTC/USDT")
    _tab_to(page, page.get_by_label("Level"))
    page.keyboard.type("23150")
    _tab_to(page, page.get_by_role("button", name="Create alert"))
    page.keyboard.press("Space")
    expect(page.get_by_text("Alert created: BTC/USDT rises above 23,150.00.")).to_be_visible()


TAP_TARGETS = """() => Array.from(document.querySelectorAll(
    'main a[href], main button, main input:not([type=hidden]), main select, main textarea, main summary, header a, header button'))
  .filter(el => el.offsetParent !== null && !el.closest('td, p, li, .muted, .small, small, .said-text'))
  .map(el => { const r = el.getBoundingClientRect();
    return {name: (el.getAttribute('aria-label') || el.textContent || el.name || el.id || el.tagName).trim().slice(0, 40),
            width: Math.round(r.width), height: Math.round(r.height)}; })
  .filter(t => t.height < 44 || t.width < 44)"""


@pytest.mark.parametrize("path", ["/dashboard/", "/trading/"])
def test_one_handed_on_a_phone_tap_targets_are_44_px(page, path):
    """Controls on their own (not links inside a sentence or a table cell) are at least 44x44 px."""
    user = _off_loop(_setup)
    page.set_viewport_size({"width": 375, "height": 812})
    _log_in_by_keyboard(page, user.email)
    page.goto(path)
    small = page.evaluate(TAP_TARGETS)
    assert not small, f"tap targets under 44 px on {path}: {small}"


def test_the_order_ticket_button_is_within_a_thumbs_reach_on_a_phone(page):
    """With the ticket's first field at the top of a phone's screen, 'Place order' is already on screen,
    full width, in the lower half where a thumb reaches it (it sticks to the bottom while the ticket is in
    view), without scrolling."""
    user = _off_loop(_setup)
    page.set_viewport_size({"width": 375, "height": 812})
    _log_in_by_keyboard(page, user.email)
    page.goto("/trading/")
    page.get_by_label("Exchange").evaluate("el => el.scrollIntoView({block: 'start'})")
    box = page.get_by_role("button", name="Place order").bounding_box()
    assert box["height"] >= 44 and box["width"] >= 375 * 0.8, box
    assert box["y"] >= 812 / 2 and box["y"] + box["height"] <= 812, box
