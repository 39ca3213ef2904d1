"""Market WebSockets: public (anonymous clients are served), snapshot first, then the feed's deltas."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from core.rls import system_context
from marketdata.hub import hub
from marketdata.models import Quote
from tests.marketdata.conftest import run_async
from tests.marketdata.test_feed import make_publisher, tick

ORIGIN = [(b"origin", b"http://localhost")]
# Consumers reach the database through database_sync_to_async, which closes connections it finds in a
# transaction: these tests commit for real (and are flushed afterwards).
pytestmark = pytest.mark.django_db(transaction=True)


def application():
    from config.asgi import application

    return application


def quote(instrument, price: str, *, age_seconds: float = 0) -> Quote:
    updated = timezone.now() - timedelta(seconds=age_seconds)
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        return Quote.objects.update_or_create(
            instrument=instrument,
            defaults={
                "price": Decimal(price),
                "open_24h": Decimal(price),
                "source": "replay",
                "at": updated,
                "updated_at": updated,
            },
        )[0]


def test_anonymous_html_client_gets_snapshot_then_live_fragments(instruments):
    quote(instruments["BTC/USDT"], "23000")
    quote(instruments["ETH/USDT"], "1600")

    async def scenario():
        client = WebsocketCommunicator(application(), "/ws/market/?view=row&symbols=BTC-USDT", headers=ORIGIN)
        connected, _ = await client.connect()
        assert connected
        snapshot = await client.receive_from(timeout=5)
        publisher = make_publisher(instruments, "BTC/USDT", "ETH/USDT", coalesce=0)
        publisher.accept_tick(tick("ETH/USDT", "1601", 1))
        publisher.accept_tick(tick("BTC/USDT", "23050.5", 1))
        await publisher.publish_due()
        update = await client.receive_from(timeout=5)
        # The next BTC tick is the marker: had the ETH tick reached this page, it would come first.
        publisher.accept_tick(tick("BTC/USDT", "23060", 2))
        await publisher.publish_due()
        following = await client.receive_from(timeout=5)
        await client.disconnect()
        return snapshot, update, following

    snapshot, update, following = run_async(scenario)
    # The snapshot: the stored quote of the symbol asked for, as out-of-band swaps; nothing about ETH.
    assert 'id="q-BTC-USDT-price"' in snapshot and 'hx-swap-oob="true"' in snapshot
    assert ">23,000.00<" in snapshot and "ETH" not in snapshot
    assert ">23,050.50<" in update and 'id="q-BTC-USDT-change"' in update
    assert ">23,060.00<" in following and "ETH" not in following  # the ETH tick went to nobody here
    assert hub.subscribers == set()  # disconnect let go of the socket


def test_json_client_snapshot_subscribe_unsubscribe_and_errors(instruments):
    quote(instruments["BTC/USDT"], "23000")
    quote(instruments["SOL/USDT"], "21.5")

    async def scenario():
        client = WebsocketCommunicator(application(), "/ws/market/json/?symbols=BTC/USDT", headers=ORIGIN)
        assert (await client.connect())[0]
        frames = [await client.receive_json_from(timeout=5)]
        await client.send_json_to({"action": "subscribe", "symbols": ["SOL-USDT"]})
        frames.append(await client.receive_json_from(timeout=5))
        await client.send_json_to({"action": "subscribe", "symbols": ["NOPE/USDT"]})
        frames.append(await client.receive_json_from(timeout=5))
        await client.send_to(text_data="not json")
        frames.append(await client.receive_json_from(timeout=5))
        await client.send_json_to({"action": "unsubscribe", "symbols": ["BTC/USDT"]})
        frames.append(await client.receive_json_from(timeout=5))
        publisher = make_publisher(instruments, "BTC/USDT", "SOL/USDT", coalesce=0)
        publisher.accept_tick(tick("BTC/USDT", "23100", 1))
        publisher.accept_tick(tick("SOL/USDT", "21.75", 1))
        await publisher.publish_due()
        frames.append(await client.receive_json_from(timeout=5))
        # The next SOL tick is the marker: had the unsubscribed BTC tick been sent, it would come first.
        publisher.accept_tick(tick("SOL/USDT", "21.8", 2))
        await publisher.publish_due()
        frames.append(await client.receive_json_from(timeout=5))
        await client.disconnect()
        return frames

    snapshot, added, unknown, garbage, after_unsubscribe, delta, following = run_async(scenario)
    assert snapshot["type"] == "snapshot"
    assert [(q["symbol"], q["price"], q["stale"]) for q in snapshot["quotes"]] == [
        ("BTC/USDT", "23000", False)
    ]
    assert "display" not in snapshot["quotes"][0]
    assert [q["symbol"] for q in added["quotes"]] == ["SOL/USDT"]
    assert (
        unknown == {"type": "error", "message": unknown["message"]}
        and "Unknown instrument 'NOPE/USDT'" in unknown["message"]
    )
    assert garbage["type"] == "error" and "subscribe" in garbage["message"]
    assert after_unsubscribe == {"type": "snapshot", "quotes": []}
    assert (delta["type"], delta["symbol"], delta["price"], delta["previous_price"]) == (
        "tick",
        "SOL/USDT",
        "21.75",
        None,
    )
    assert delta["candle"]["c"] == "21.75"
    assert (following["type"], following["symbol"], following["price"]) == ("tick", "SOL/USDT", "21.8")


def test_unknown_symbol_or_view_is_refused_with_a_reason(instruments):
    async def scenario():
        results = []
        for path in ["/ws/market/?symbols=DOGE-EUR", "/ws/market/?view=fancy", "/ws/market/json/?symbols=X"]:
            client = WebsocketCommunicator(application(), path, headers=ORIGIN)
            await client.connect()
            message = json.loads(await client.receive_from(timeout=5))
            closed = await client.receive_output(timeout=5)
            results.append((message, closed))
            await client.disconnect()
        return results

    for message, closed in run_async(scenario):
        assert message["type"] == "error" and message["message"]
        assert closed == {"type": "websocket.close", "code": 4400}


def test_a_quote_silent_beyond_its_threshold_arrives_marked_stale(instruments):
    quote(instruments["BTC/USDT"], "23000", age_seconds=instruments["BTC/USDT"].stale_after_seconds + 5)

    async def scenario():
        client = WebsocketCommunicator(application(), "/ws/market/json/", headers=ORIGIN)
        await client.connect()
        snapshot = await client.receive_json_from(timeout=5)
        await client.disconnect()
        return snapshot

    snapshot = run_async(scenario)
    assert [(q["symbol"], q["stale"]) for q in snapshot["quotes"]] == [("BTC/USDT", True)]


def test_snapshot_is_never_overtaken_by_an_older_delta(instruments):
    """A delta that arrives while the snapshot is being sent is delivered after it, and only if newer."""
    from marketdata.hub import MarketHub, Subscriber

    sent = []

    class Recorder(Subscriber):
        def frames(self, messages):
            return [m["seq"] for m in messages]

        async def send_frames(self, frames):
            sent.extend(frames)

    def message(seq):
        data = {
            "stale": False,
            "stale_after": 30,
            "display": {"updated_ts": datetime.now(tz=UTC).timestamp()},
        }
        return {"slug": "BTC-USDT", "seq": seq, "data": data}

    async def scenario():
        local = MarketHub()
        local._loaded.set()
        local._loop = asyncio.get_running_loop()
        local._task = local._loop.create_future()  # stands for the channel-layer reader, not needed here
        local.latest["BTC-USDT"] = message(10)
        subscriber = Recorder()
        snapshot = await local.subscribe(subscriber)
        await local.dispatch(message(11))  # arrives before the snapshot went out
        await local.dispatch(message(9))  # an old one, ignored
        await local.flush()
        assert sent == []
        await local.ready(subscriber, sent=snapshot)
        await local.dispatch(message(12))
        await local.flush()
        return [m["seq"] for m in snapshot]

    assert run_async(scenario) == [10]
    assert sent == [11, 12]


def test_symbols_published_together_reach_a_page_in_one_frame(instruments):
    async def scenario():
        client = WebsocketCommunicator(application(), "/ws/market/?view=ticker", headers=ORIGIN)
        assert (await client.connect())[0]
        publisher = make_publisher(instruments, "BTC/USDT", "ETH/USDT", coalesce=0)
        publisher.accept_tick(tick("BTC/USDT", "23050.5", 1))
        publisher.accept_tick(tick("ETH/USDT", "1601", 1))
        await publisher.publish_due()
        frame = await client.receive_from(timeout=5)
        # The next publish is the marker: a second frame for the first publish would come before it.
        publisher.accept_tick(tick("BTC/USDT", "23060", 2))
        await publisher.publish_due()
        following = await client.receive_from(timeout=5)
        await client.disconnect()
        return frame, following

    frame, following = run_async(scenario)
    assert (
        'hx-swap-oob="outerHTML:.ticker-BTC-USDT"' in frame
        and 'hx-swap-oob="outerHTML:.ticker-ETH-USDT"' in frame
    )
    assert "23,060" in following and "ETH-USDT" not in following, "both symbols came in the first frame alone"


def test_sockets_that_close_while_a_flush_writes_to_them_are_dropped_without_a_traceback(caplog):
    """300 market sockets closing at once: some are written to after they closed but before their
    disconnect reached the consumer. Each is dropped with one log line, not a traceback."""
    from autobahn.exception import Disconnected  # what daphne raises for a socket already closing

    from marketdata.hub import MarketHub, Subscriber

    class Socket(Subscriber):
        def __init__(self, closing: bool) -> None:
            self.closing, self.received = closing, []

        def frames(self, messages):
            return [m["slug"] for m in messages]

        async def send_frames(self, frames):
            if self.closing:
                raise Disconnected("Attempt to send on a closed protocol")
            self.received.extend(frames)

    message = {
        "slug": "BTC-USDT",
        "seq": 1,
        "data": {"stale": False, "stale_after": 30, "display": {"updated_ts": datetime.now(tz=UTC).timestamp()}},
    }
    sockets = [Socket(closing=n % 3 == 0) for n in range(300)]

    async def scenario():
        local = MarketHub()
        local._loaded.set()
        local._loop = asyncio.get_running_loop()
        local._task = local._loop.create_future()  # stands for the channel-layer reader, not needed here
        for socket in sockets:
            await local.subscribe(socket)
            await local.ready(socket, sent=[])
        await local.dispatch(message)
        await local.flush()
        return local.subscribers

    with caplog.at_level(logging.INFO, logger="marketdata.hub"):
        remaining = run_async(scenario)
    assert remaining == {s for s in sockets if not s.closing}
    assert all(s.received == ["BTC-USDT"] for s in remaining)
    lines = [r.msg for r in caplog.records if r.name == "marketdata.hub"]
    assert not [line for line in lines if "exception" in line or "exc_info" in line]
    assert len(lines) == 100 and all(line["event"] == "marketdata.hub_socket_gone" for line in lines)
