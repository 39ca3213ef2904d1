"""Browser tests: the real ASGI stack (daphne, Channels, Redis) in a subprocess, driven by Playwright.

The server process uses the same test database, so tests that use it run with `transactional_db`
(their rows are committed, the server can see them, and they are flushed afterwards).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from playwright.sync_api import expect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make between
# browser steps are ordinary synchronous code, so Django's async-safety guard is relaxed here only.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    mail_dir: Path
    process: subprocess.Popen

    def mails(self) -> list[str]:
        return [p.read_text() for p in sorted(self.mail_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)]


@pytest.fixture(scope="session")
def asgi_server(django_db_setup, tmp_path_factory) -> LiveServer:
    port = _free_port()
    mail_dir = tmp_path_factory.mktemp("mail")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        # tests/api/test_socket.py stops reading a socket and waits for the close (core.ws_backpressure).
        "WEBSOCKET_SLOW_CLIENT_SECONDS": "2",
    }
    # The browser gets what production serves: collectstatic's fingerprinted, compressed files.
    collect = subprocess.run(
        [sys.executable, "manage.py", "static_collected"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if collect.returncode:
        raise RuntimeError("collectstatic failed: " + (collect.stdout + collect.stderr)[-3000:])
    env["NEXUS_COLLECTED_STATIC"] = collect.stdout.strip().splitlines()[-1]
    log = open(tmp_path_factory.mktemp("logs") / "daphne.log", "w")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log.close()
                raise RuntimeError("daphne did not start: " + Path(log.name).read_text()[-3000:]) from None
            time.sleep(0.2)
    yield LiveServer(url=url, mail_dir=mail_dir, process=process)
    process.terminate()
    process.wait(timeout=10)
    log.close()


@pytest.fixture(scope="module")
def browser():
    # Module scope, not session: Playwright's sync API keeps an asyncio loop running in this thread while
    # it is open, and async_to_sync in any later (non-browser) test would refuse to run under it.
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required for browser tests: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, asgi_server, transactional_db):
    context = browser.new_context(base_url=asgi_server.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield page
    context.close()
    assert not errors, f"the page broke its Content-Security-Policy: {errors}"


@pytest.fixture
def market_feed(transactional_db, asgi_server, tmp_path):
    """`manage.py run_marketfeed` on the test database, one recorded minute a second, BTC and ETH."""
    from marketdata.services import instruments_seed

    instruments_seed()
    log = open(tmp_path / "feed.log", "w")  # noqa: SIM115 - closed at teardown
    feed = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "run_marketfeed",
            "--speed",
            "60",
            "--ticks-per-minute",
            "12",
            "--backfill-minutes",
            "90",
            "--metrics-port",
            "0",
            "--symbols",
            "BTC/USDT,ETH/USDT",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT count(*) FROM marketdata_quote")
            if cursor.fetchone()[0] >= 2:
                break
            if feed.poll() is not None or time.monotonic() > deadline:
                log.close()
                raise RuntimeError("the feed did not start: " + (tmp_path / "feed.log").read_text()[-3000:])
            time.sleep(0.2)
    yield feed
    feed.terminate()
    feed.wait(timeout=15)
    log.close()


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


__all__ = ["settings"]


def log_in(page, email: str, password: str | None = None) -> None:
    """Sign in through the login form and land on the dashboard."""
    from tests.factories import DEFAULT_PASSWORD

    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.locator("#id_password").fill(password or DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
