"""Simulated traders for bench/load/run.py (run it through run.py, which seeds them and starts the platform).

Each `Trader` is one seeded user (session cookie + API token, read from LOAD_TRADERS, a JSON file run.py
writes). For its whole life it holds the sockets a browser holds on the dashboard: /ws/user/ (every signed-in
page) and /ws/market/?view=row (the live prices), each read by a greenlet that reconnects with backoff when
the socket closes. Every frame carrying `data-tick-at` (the moment its tick reached the feed, same host clock)
is recorded as a "WS tick-to-browser" sample. Between pauses it browses pages, places paper market orders,
creates alerts and calls the read API.

LOAD_MODE=floor: the users only hold a socket to the raw broadcast floor (bench/broadcast.py's floor server at
LOAD_FLOOR_URL) and time its frames the same way: the same clients, the same count, no application.

Socket events are reported as locust requests of type "WS" (connect / reconnect / closed / tick-to-browser),
so they appear in locust's own statistics; run.py keeps them apart from the HTTP figures.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import re
import time
import uuid
from pathlib import Path

import gevent
import websocket
from locust import FastHttpUser, between, events, task

TICK_AT = re.compile(r'data-tick-at="([0-9.]+)"')
TRADERS = json.loads(Path(os.environ["LOAD_TRADERS"]).read_text()) if os.environ.get("LOAD_TRADERS") else []
WEB_URLS = [url for url in os.environ.get("LOAD_WEB_URLS", "").split(",") if url]
MODE = os.environ.get("LOAD_MODE", "nexus")
FLOOR_URL = os.environ.get("LOAD_FLOOR_URL", "")
MARKET_SHARE = float(os.environ.get("LOAD_MARKET_SHARE", "1"))
_counter = itertools.count()
STOPPING = False


OPEN: set = set()  # the sockets this process holds right now


@events.test_stopping.add_listener
def _stopping(**_kwargs) -> None:
    """Before the users stop: how many sockets this process holds (response_length), then stop reconnecting."""
    global STOPPING
    fire("held at end", time.time(), response_time=0, length=len(OPEN))
    STOPPING = True


def fire(name: str, started: float, *, response_time: float | None = None, length: int = 0, error=None) -> None:
    events.request.fire(
        request_type="WS",
        name=name,
        response_time=response_time if response_time is not None else (time.time() - started) * 1000,
        response_length=length,
        exception=error,
        context={},
    )


class Sockets:
    """The sockets a browser tab holds, each kept open by a greenlet of its own."""

    def __init__(self) -> None:
        self.greenlets: list[gevent.Greenlet] = []
        self.open: list[websocket.WebSocket] = []
        self.closed = False

    def hold(self, url: str, label: str, *, origin: str, cookie: str = "", tick_times: bool = False) -> None:
        self.greenlets.append(gevent.spawn(self._run, url, label, origin, cookie, tick_times))

    def _run(self, url: str, label: str, origin: str, cookie: str, tick_times: bool) -> None:
        attempt = 0
        first = True
        while not self.closed and not STOPPING:
            started = time.time()
            try:
                ws = websocket.create_connection(
                    url, origin=origin, cookie=cookie or None, timeout=30,
                    enable_multithread=False,
                )
            except Exception as error:  # noqa: BLE001 - a refused or failed handshake: count, retry
                fire(f"connect {label}", started, error=error)
                attempt += 1
                gevent.sleep(min(10, 0.5 * 2**attempt) * random.uniform(0.5, 1.5))
                continue
            fire(f"{'connect' if first else 'reconnect'} {label}", started)
            first, attempt = False, 0
            self.open.append(ws)
            OPEN.add(ws)
            ws.settimeout(None)
            try:
                while True:
                    message = ws.recv()
                    if not message:
                        break
                    if tick_times:
                        now = time.time()
                        for stamp in TICK_AT.findall(message if isinstance(message, str) else message.decode()):
                            fire("tick-to-browser", now, response_time=(now - float(stamp)) * 1000)
            except Exception:  # noqa: BLE001, S110 - closed by the server or the network
                pass
            finally:
                OPEN.discard(ws)
                if ws in self.open:
                    self.open.remove(ws)
            if self.closed or STOPPING:
                return
            fire(f"closed {label}", time.time(), error=RuntimeError("socket closed by the server"))
            gevent.sleep(random.uniform(0.2, 1.0))

    def close(self) -> None:
        self.closed = True
        for ws in list(self.open):
            with contextlib.suppress(Exception):  # already gone
                ws.close()
        gevent.killall(self.greenlets, block=False)


class Trader(FastHttpUser):
    wait_time = between(1, 5)
    # A large pool: every user holds its own keep-alive connection.
    concurrency = 1
    network_timeout = 60.0
    connection_timeout = 60.0

    def on_start(self) -> None:
        runner = self.environment.runner
        index = next(_counter) * int(os.environ.get("LOAD_PROCESSES", "1")) + getattr(runner, "worker_index", 0)
        self.trader = TRADERS[index % len(TRADERS)] if TRADERS else {}
        self.sockets = Sockets()
        base = WEB_URLS[index % len(WEB_URLS)] if WEB_URLS else self.host
        self.base = base
        ws_base = base.replace("http://", "ws://")
        if MODE == "floor":
            self.sockets.hold(FLOOR_URL, "/ws (floor)", origin=base, tick_times=True)
            return
        csrf = self.trader["csrf"]
        self.cookie = f"sessionid={self.trader['session']}; csrftoken={csrf}"
        self.page_headers = {"Cookie": self.cookie}
        self.api_headers = {"Authorization": f"Token {self.trader['token']}", "Accept": "application/json"}
        self.sockets.hold(f"{ws_base}/ws/user/", "/ws/user/", origin=base, cookie=self.cookie)
        if random.random() < MARKET_SHARE:
            self.sockets.hold(f"{ws_base}/ws/market/?view=row", "/ws/market/", origin=base, tick_times=True)

    def on_stop(self) -> None:
        self.sockets.close()

    def _get(self, path: str, name: str, headers: dict) -> None:
        self.client.get(f"{self.base}{path}", headers=headers, name=name)

    @task(4)
    def dashboard(self) -> None:
        if MODE == "floor":
            return
        self._get("/dashboard/", "page /dashboard/", self.page_headers)

    @task(2)
    def markets(self) -> None:
        if MODE == "floor":
            return
        self._get("/markets", "page /markets", self.page_headers)

    @task(1)
    def pages(self) -> None:
        if MODE == "floor":
            return
        path = random.choice(["/alerts/", "/trading/orders/history/", "/portfolios/", "/notifications/"])
        self._get(path, f"page {path}", self.page_headers)

    @task(3)
    def api_reads(self) -> None:
        if MODE == "floor":
            return
        path = random.choice([
            "/api/v1/portfolios/", "/api/v1/trading/orders/", "/api/v1/markets/quotes/", "/api/v1/alerts/",
            f"/api/v1/portfolios/{self.trader['portfolio']}/positions/",
        ])
        name = "api " + re.sub(r"/\d+/", "/{id}/", path)
        self._get(path, name, self.api_headers)

    @task(2)
    def paper_order(self) -> None:
        if MODE == "floor":
            return
        symbol, quantity = random.choice([("BTC/USDT", "0.001"), ("ETH/USDT", "0.01")])
        self.client.post(
            f"{self.base}/api/v1/trading/orders/",
            json={"connection": self.trader["connection"], "portfolio": self.trader["portfolio"],
                  "symbol": symbol, "side": "buy",
                  "type": "market", "quantity": quantity},
            headers={**self.api_headers, "Idempotency-Key": str(uuid.uuid4())},
            name="api POST /api/v1/trading/orders/",
        )

    @task(1)
    def alert_create(self) -> None:
        if MODE == "floor":
            return
        self.client.post(
            f"{self.base}/api/v1/alerts/",
            json={"kind": "price_above", "symbol": "BTC/USDT", "threshold": str(random.randint(200000, 300000))},
            headers={**self.api_headers, "Idempotency-Key": str(uuid.uuid4())},
            name="api POST /api/v1/alerts/",
        )

    @task(1)
    def idle(self) -> None:
        """A trader reading the page: only the sockets work."""
