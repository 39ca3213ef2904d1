import re

from playwright.sync_api import expect

from tests.factories import DEFAULT_PASSWORD, UserFactory


def test_sign_up_verify_and_land_on_the_dashboard(page, asgi_server):
    page.goto("/accounts/signup/")
    page.get_by_label("Email").fill("newtrader@example.com")
    page.locator("#id_password1").fill("a-strong-pass-2026")
    page.locator("#id_password2").fill("a-strong-pass-2026")
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_role("heading", name="Verify Your Email Address")).to_be_visible()

    link = re.search(r"http://\S+/accounts/confirm-email/\S+/", asgi_server.mails()[-1]).group(0)
    page.goto(link)
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_log_in_lands_on_the_dashboard_shell(page):
    UserFactory(email="existing@example.com", display_name="Existing Trader")
    page.goto("/dashboard/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Email").fill("existing@example.com")
    page.locator("#id_password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    expect(page.get_by_text("Welcome, Existing Trader.")).to_be_visible()
    expect(page.get_by_role("navigation", name="Primary").get_by_role("link", name="Dashboard")).to_have_attribute(
        "aria-current", "page"
    )


def test_api_tokens_page_creates_shows_once_and_revokes_then_log_out_everywhere(page):
    UserFactory(email="integrator@example.com")
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto("/settings/tokens/")
    page.get_by_label("Email").fill("integrator@example.com")
    page.locator("#id_password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()

    page.get_by_label("Name").fill("tax export")
    page.get_by_role("button", name="Create token").click()
    shown = page.get_by_label("Your new token “tax export”")
    expect(shown).to_have_value(re.compile(r"^nexus_[0-9a-f]{64}$"))
    expect(page.get_by_role("row").filter(has_text="tax export")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "no sideways scroll"

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke tax export").click()
    expect(page.get_by_text("No tokens yet.")).to_be_visible()
    expect(shown).to_have_count(0)

    page.goto("/settings/")
    page.get_by_role("button", name="Log out everywhere").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.goto("/settings/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
