"""Several daphne processes on one socket (config.webserver) share the Redis channel layer: a broadcast
sent to the layer reaches the WebSockets held by every one of them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp
import psutil
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from config.webserver import default_workers
from marketdata.render import ALL_GROUP, channel_message, tick_payload
from tests.factories.marketdata import InstrumentFactory
from tests.scale.helpers import ROOT, child_env, free_port, stop, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
        return response.status == 200


def _sockets_per_child(server: subprocess.Popen, port: int) -> dict[int, int]:
    """Established connections on the shared port, per daphne child."""
    counts = {}
    for child in psutil.Process(server.pid).children():
        counts[child.pid] = sum(
            1 for c in child.net_connections(kind="tcp") if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
        )
    return counts


def _message(price: str) -> dict:
    now = datetime.now(tz=UTC)
    return channel_message(
        tick_payload(
            symbol="BTC/USDT", seq=int(now.timestamp() * 1_000_000), price=Decimal(price), previous_price=None,
            bid=None, ask=None, open_24h=None, high_24h=None, low_24h=None, volume_24h=None, at=now,
            updated_at=now, stale=False, stale_after=60, precision=2, candle=None,
        )
    )


def test_default_workers_follow_web_concurrency(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert default_workers() == 3
    monkeypatch.delenv("WEB_CONCURRENCY")
    assert default_workers() >= 1


def test_a_broadcast_reaches_sockets_on_every_web_process():
    InstrumentFactory(symbol="BTC/USDT")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "config.webserver", "--port", str(port), "--workers", "2"],
        cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: _healthy(port), timeout=60, what="the web processes to answer")
        assert len(psutil.Process(server.pid).children()) == 2

        async def scenario() -> tuple[dict[int, int], list[str]]:
            origin = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as session:
                sockets = []
                # Connect until both processes hold some (the kernel spreads accepts; bounded).
                for _ in range(24):
                    ws = await session.ws_connect(f"ws://127.0.0.1:{port}/ws/market/json/", headers={"Origin": origin})
                    sockets.append(ws)
                    await asyncio.sleep(0.05)
                    counts = _sockets_per_child(server, port)
                    if len(sockets) >= 4 and all(counts.values()):
                        break
                counts = _sockets_per_child(server, port)
                layer = get_channel_layer()
                prices = []
                deadline = asyncio.get_running_loop().time() + 20
                for ws in sockets:
                    got = None
                    while got is None:
                        await layer.group_send(ALL_GROUP, _message("12345.67"))
                        remaining = deadline - asyncio.get_running_loop().time()
                        assert remaining > 0, "a socket never received the broadcast"
                        try:
                            frame = await ws.receive(timeout=min(1.0, remaining))
                        except TimeoutError:
                            continue
                        payload = json.loads(frame.data)  # a snapshot first, then one object per tick
                        if payload.get("type") == "tick" and payload["price"] == "12345.67":
                            got = payload["price"]
                    prices.append(got)
                for ws in sockets:
                    await ws.close()
                return counts, prices

        counts, prices = async_to_sync(scenario)()
        assert len(counts) == 2 and all(n > 0 for n in counts.values()), counts
        assert prices and set(prices) == {"12345.67"}

        # A child that dies is replaced; SIGTERM on the parent stops them all.
        children = psutil.Process(server.pid).children()
        children[0].kill()
        wait_for(
            lambda: {c.pid for c in psutil.Process(server.pid).children()} - {c.pid for c in children},
            timeout=30, what="a replacement daphne",
        )
        wait_for(lambda: _healthy(port), timeout=60, what="the web processes to answer again")
        current = psutil.Process(server.pid).children()
        assert len(current) == 2
        server.terminate()
        assert server.wait(timeout=40) == 0
        assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in current)
    finally:
        stop(server)


def test_the_supervisor_restarts_a_child_and_gives_up_on_a_crash_loop(monkeypatch):
    """config.webserver's supervision, with a stand-in for daphne."""
    from config import webserver

    monkeypatch.setattr(webserver, "POLL_SECONDS", 0.02)
    sock = webserver.bind("127.0.0.1", 0)
    try:
        monkeypatch.setattr(webserver, "daphne_command", lambda fd, extra: [sys.executable, "-c", "import time; time.sleep(60)"])
        supervisor = webserver.Supervisor(sock=sock, workers=2, extra=[], graceful_timeout=5, db_pool_size=3)
        runner = threading.Thread(target=supervisor.run)
        runner.start()
        try:
            wait_for(lambda: len(supervisor.children) == 2, timeout=10, what="two children")
            first = supervisor.children[0]
            first.kill()
            wait_for(lambda: supervisor.children[0] is not first, timeout=10, what="a replacement")
        finally:
            supervisor.stop()
            runner.join(timeout=20)
        assert all(child.poll() is not None for child in supervisor.children.values())

        monkeypatch.setattr(webserver, "daphne_command", lambda fd, extra: [sys.executable, "-c", "raise SystemExit(3)"])
        crashing = webserver.Supervisor(sock=sock, workers=1, extra=[], graceful_timeout=5)
        assert crashing.run() == 1  # restarted MAX_RESTARTS times, then gave up
        assert len(crashing.restarts) == webserver.MAX_RESTARTS
    finally:
        sock.close()
