"""`make screenshots`: every page, light and dark, desktop (1280x800) and phone (375x812), as PNG files.

Run by `scripts/nexus.py screenshots`, which prepares the database and demo data and starts the server;
this part signs in as the demo trader and visits the pages the browser suite visits (tests/e2e/pages.py,
enumerated from the URL resolver), with their parameters filled from the demo trader's own objects.
Usage: python scripts/screenshots.py BASE_URL OUTPUT_DIR
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

from accounts.management.commands.seed_demo import DEMO_TRADER  # noqa: E402
from accounts.models import User  # noqa: E402
from core.rls import system_context, tenant  # noqa: E402
from tests.e2e import pages  # noqa: E402

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 375, "height": 812}}
THEMES = ("light", "dark")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def demo_objects() -> dict:
    """The demo trader's first object of each kind a page's URL needs (absent kinds are skipped)."""
    from alerts.models import Alert
    from bot.models import Conversation
    from portfolios.models import Portfolio
    from trading.models import Bot

    with system_context(reason="screenshots: find the demo trader"):
        trader = User.objects.get(email=DEMO_TRADER["email"])
    found = {}
    with tenant(trader.pk):
        for key, model in (("portfolio", Portfolio), ("alert", Alert), ("bot", Bot), ("conversation", Conversation)):
            first = model.objects.filter(user=trader).order_by("pk").values_list("pk", flat=True).first()
            if first is not None:
                found[key] = first
    return found


def main(base_url: str, output: Path) -> int:
    from playwright.sync_api import sync_playwright

    objects = demo_objects()
    missing = object()
    visits = []
    for route in pages.routes():
        rule = route.rule
        if not isinstance(rule, pages.Visit):
            continue
        for role in rule.roles:
            if role == "staff":
                continue
            try:
                params = rule.params(objects) if rule.params else {}
            except KeyError:
                params = missing
            if params is missing:
                print(f"[screenshots] skipped {route.route}: the demo trader has none of what it shows")
                continue
            visits.append(pages.PageVisit(role=role, path=pages.path_for(route.route, params) + (
                f"?{rule.query}" if rule.query else ""), route=route.route))
    output.mkdir(parents=True, exist_ok=True)
    chromium = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        sessions = {}
        for role in ("visitor", "trader"):
            context = browser.new_context(base_url=base_url)
            if role == "trader":
                page = context.new_page()
                page.goto("/accounts/login/")
                page.get_by_label("Email").fill(DEMO_TRADER["email"])
                page.locator("#id_password").fill(DEMO_TRADER["password"])
                page.get_by_role("button", name="Sign In").click()
                page.wait_for_url(re.compile(r"/dashboard/$"))
                page.close()
            sessions[role] = context.storage_state()
            context.close()
        count = 0
        for role in ("visitor", "trader"):
            for viewport_name, viewport in VIEWPORTS.items():
                for theme in THEMES:
                    context = browser.new_context(
                        base_url=base_url, viewport=viewport, color_scheme=theme, storage_state=sessions[role]
                    )
                    page = context.new_page()
                    for visit in (v for v in visits if v.role == role):
                        slug = visit.path.strip("/").replace("/", "_").replace("?", "_") or "home"
                        page.goto(visit.path, wait_until="load")
                        page.evaluate("() => document.fonts.ready.then(() => new Promise(r => requestAnimationFrame(r)))")
                        page.screenshot(path=str(output / f"{role}-{slug}-{theme}-{viewport_name}.png"), full_page=True)
                        count += 1
                    context.close()
        browser.close()
    print(f"[screenshots] {count} screenshots of {len(visits)} pages in {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
