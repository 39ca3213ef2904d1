"""The web tier's per-process plumbing: the request queue in front of Django, Django's middleware chain in
one thread hop, one Redis pool (and client) per process, and daphne leaving POST bodies to Django."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from unittest import mock

import pytest
import redis.exceptions
from asgiref.sync import AsyncToSync
from asgiref.testing import ApplicationCommunicator
from django.core.cache import caches
from django.core.handlers.asgi import ASGIHandler

from core.asgi_handler import SyncChainASGIHandler
from core.asgi_limit import HttpConcurrencyLimit


class _Recorder:
    """An ASGI app that holds each call until released and notes how many run at once, in what order."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.started: list[int] = []
        self.release = asyncio.Event()

    async def __call__(self, scope, receive, send) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        self.started.append(scope["n"])
        try:
            await self.release.wait()
        finally:
            self.running -= 1


async def _noop_receive() -> dict:
    return {"type": "http.request", "body": b""}


async def _noop_send(message: dict) -> None:
    return None


def test_at_most_the_limit_run_at_once_and_the_rest_in_arrival_order():
    async def scenario():
        app = _Recorder()
        limited = HttpConcurrencyLimit(app, 3)
        calls = [
            asyncio.create_task(limited({"type": "http", "n": n}, _noop_receive, _noop_send))
            for n in range(12)
        ]
        for _ in range(50):
            await asyncio.sleep(0)
        assert app.running == 3 and limited.waiting == 9
        app.release.set()
        await asyncio.gather(*calls)
        return app, limited

    app, limited = asyncio.run(scenario())
    assert app.most == 3
    assert app.started == list(range(12))  # first come, first served
    assert limited.waiting == 0 and limited.active == 0


def test_a_failing_request_gives_its_turn_back():
    async def boom(scope, receive, send):
        raise RuntimeError("view crashed")

    async def scenario():
        limited = HttpConcurrencyLimit(boom, 1)
        for _ in range(3):
            with pytest.raises(RuntimeError):
                await asyncio.wait_for(limited({"type": "http"}, _noop_receive, _noop_send), timeout=2)
        return limited

    limited = asyncio.run(scenario())
    assert limited.active == 0 and limited.waiting == 0


async def _until(condition, seconds: float = 5.0) -> None:
    """Poll the event loop until condition() holds (fails after `seconds`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def test_requests_still_inside_after_the_stall_time_let_the_next_in_up_to_the_ceiling():
    """Requests that wait (a lock, an upstream) stop holding a running turn once they have been inside for
    `stall_after`: the queue moves on, up to `ceiling` inside at once, still in arrival order."""

    async def scenario():
        app = _Recorder()
        limited = HttpConcurrencyLimit(app, 2, ceiling=5, stall_after=0.02)
        calls = [
            asyncio.create_task(limited({"type": "http", "n": n}, _noop_receive, _noop_send)) for n in range(9)
        ]
        await _until(lambda: app.running == 5 and limited.running == 0)
        await asyncio.sleep(0.05)  # stalled, all five: still no sixth
        inside, waiting, running = limited.active, limited.waiting, limited.running
        app.release.set()
        await asyncio.gather(*calls)
        return app, (inside, waiting, running), limited

    app, (inside, waiting, running), limited = asyncio.run(scenario())
    assert (inside, waiting, running) == (5, 4, 0)  # five stalled inside, none counted, four queued
    assert app.most == 5 and app.started == list(range(9))
    assert (limited.active, limited.waiting, limited.running) == (0, 0, 0)


def test_requests_that_finish_before_the_stall_time_keep_to_the_limit():
    """Short requests (computing, under the GIL) never make room for more than `limit` at once."""

    async def scenario():
        running, most = 0, 0

        async def short(scope, receive, send):
            nonlocal running, most
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.001)
            running -= 1

        limited = HttpConcurrencyLimit(short, 2, ceiling=10, stall_after=30)
        await asyncio.gather(*(limited({"type": "http"}, _noop_receive, _noop_send) for _ in range(40)))
        return most, limited

    most, limited = asyncio.run(scenario())
    assert most == 2 and limited.active == 0


def test_a_request_cancelled_in_the_queue_or_as_it_is_admitted_takes_no_turn_with_it():
    """A client that disconnects while queued (daphne cancels its task) leaves the queue; one cancelled
    in the instant it was given a turn gives the turn to the next request."""

    async def scenario():
        app = _Recorder()
        limited = HttpConcurrencyLimit(app, 1)
        first = asyncio.create_task(limited({"type": "http", "n": 0}, _noop_receive, _noop_send))
        gone = asyncio.create_task(limited({"type": "http", "n": 1}, _noop_receive, _noop_send))
        await _until(lambda: limited.waiting == 1)
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        queued_after_cancel = limited.waiting
        app.release.set()
        await first
        # Handed a turn (the previous request left) and cancelled before it could run.
        gate = limited._gate()
        held = await gate.enter()
        admitted_then_cancelled = asyncio.create_task(gate.enter())
        await _until(lambda: limited.waiting == 1)
        gate.leave(held)
        admitted_then_cancelled.cancel()
        outcome = await asyncio.gather(admitted_then_cancelled, return_exceptions=True)
        after = asyncio.create_task(limited({"type": "http", "n": 2}, _noop_receive, _noop_send))
        await asyncio.wait_for(after, 2)
        return app, queued_after_cancel, outcome, limited

    app, queued_after_cancel, outcome, limited = asyncio.run(scenario())
    assert queued_after_cancel == 0 and isinstance(outcome[0], asyncio.CancelledError)
    assert app.started == [0, 2]
    assert (limited.active, limited.waiting, limited.running) == (0, 0, 0)


def test_websockets_and_an_unset_limit_are_not_queued():
    async def scenario(scope_type: str, limit: int):
        app = _Recorder()
        limited = HttpConcurrencyLimit(app, limit)
        calls = [
            asyncio.create_task(limited({"type": scope_type, "n": n}, _noop_receive, _noop_send))
            for n in range(8)
        ]
        for _ in range(50):
            await asyncio.sleep(0)
        running = app.running
        app.release.set()
        await asyncio.gather(*calls)
        return running

    assert asyncio.run(scenario("websocket", 2)) == 8
    assert asyncio.run(scenario("http", 0)) == 8


def test_health_probes_answer_while_every_turn_is_taken():
    async def scenario():
        app = _Recorder()
        limited = HttpConcurrencyLimit(app, 1, exempt=frozenset({"/healthz"}))
        busy = asyncio.create_task(
            limited({"type": "http", "path": "/api/v1/x/", "n": 0}, _noop_receive, _noop_send)
        )
        queued = asyncio.create_task(
            limited({"type": "http", "path": "/api/v1/y/", "n": 1}, _noop_receive, _noop_send)
        )
        probe = asyncio.create_task(
            limited({"type": "http", "path": "/healthz", "n": 2}, _noop_receive, _noop_send)
        )
        for _ in range(50):
            await asyncio.sleep(0)
        started = list(app.started)
        app.release.set()
        await asyncio.gather(busy, queued, probe)
        return started

    assert asyncio.run(scenario()) == [0, 2]  # the probe ran past the queued request


def _asgi_get(app, path: str) -> tuple[int, bytes]:
    async def scenario():
        communicator = ApplicationCommunicator(app, {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
        })
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start, body = await communicator.receive_output(10), b""
        while True:  # the whole body, however many messages it comes in (a streamed response: several)
            message = await communicator.receive_output(10)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await communicator.wait(10)
        return start["status"], body

    return asyncio.run(scenario())


def test_the_middleware_chain_runs_in_one_hop_from_the_event_loop(monkeypatch):
    """Django's own ASGI handler returns to the event loop inside the chain (an async-capable middleware
    below sync ones: async_to_sync, then the view back in a thread); ours runs chain and view in one go."""
    crossings = []
    original = AsyncToSync.__call__

    def counted(self, *args, **kwargs):
        crossings.append(getattr(self.awaitable, "__qualname__", repr(self.awaitable)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AsyncToSync, "__call__", counted)
    assert _asgi_get(ASGIHandler(), "/healthz") == (200, b'{"status": "ok"}')
    assert crossings, "Django's handler no longer crosses back to the loop: this handler may be unneeded"
    crossings.clear()
    assert _asgi_get(SyncChainASGIHandler(), "/healthz") == (200, b'{"status": "ok"}')
    assert crossings == []


@pytest.fixture
def request_signals():
    """(signal, thread) for each request_started / request_finished, in order."""
    from django.core import signals

    seen: list[tuple[str, int]] = []

    def started(**kwargs):
        seen.append(("started", threading.get_ident()))

    def finished(**kwargs):
        seen.append(("finished", threading.get_ident()))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    yield seen
    signals.request_started.disconnect(started)
    signals.request_finished.disconnect(finished)


def test_a_request_starts_and_finishes_on_one_thread_and_the_threads_are_reused(request_signals):
    """request_started / request_finished close old database connections: they must run on the thread
    that used them. Django's handler starts (and joins) a thread per request; this one reuses idle ones."""
    handler = SyncChainASGIHandler()
    for _ in range(5):
        assert _asgi_get(handler, "/healthz") == (200, b'{"status": "ok"}')
    assert [name for name, _ in request_signals] == ["started", "finished"] * 5
    pairs = list(zip(request_signals[::2], request_signals[1::2], strict=True))
    assert all(start[1] == finish[1] for start, finish in pairs)
    assert len({thread for _, thread in request_signals}) == 1  # one idle thread, reused each time
    assert all(thread != threading.get_ident() for _, thread in request_signals)


@pytest.mark.urls("tests.core.urls_streaming")
def test_a_streamed_response_is_sent_whole_then_finished_on_the_request_thread(transactional_db, request_signals):
    assert _asgi_get(SyncChainASGIHandler(), "/test-streamed/") == (200, b"one,two,three")
    assert [name for name, _ in request_signals] == ["started", "finished"]
    assert request_signals[0][1] == request_signals[1][1]


def test_every_request_context_shares_one_redis_pool():
    """Each daphne request runs in a thread and context of its own, as here: one connection pool for all."""
    clients, failures = [], []

    def request(n: int) -> None:
        try:
            cache = caches["default"]  # a new cache object per thread/context, as under ASGI
            cache.set(f"web-tier-test:{n}", n, 30)
            assert cache.get(f"web-tier-test:{n}") == n
            clients.append(cache._cache)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    for batch in range(4):
        threads = [threading.Thread(target=request, args=(batch * 10 + i,)) for i in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not failures
    assert len(clients) == 40 and len({id(client) for client in clients}) == 1
    # and one redis-py client on it, not a new one (with its callback tables) per cache call
    assert clients[0].get_client(write=True) is clients[0].get_client(write=True)
    pool = clients[0]._get_connection_pool(write=True)
    # At most one connection per request that ran at the same moment, never one per request.
    assert len(pool._available_connections) + len(pool._in_use_connections) <= 10


def test_cache_keys_are_not_held_to_memcached_limits():
    """Redis takes any key: no CacheKeyWarning (Django's check of every key, a cost in every request)."""
    import warnings

    cache = caches["default"]
    key = "web-tier-test: a key with spaces " + "x" * 300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache.set(key, "kept", 30)
        assert cache.get_many([key]) == {key: "kept"}
    cache.delete(key)


def test_daphne_leaves_post_bodies_to_django():
    from daphne.http_protocol import WebRequest

    from core import daphne_http

    assert daphne_http.install() is True
    assert daphne_http.install() is True  # twice is harmless
    channel = mock.MagicMock()
    request = WebRequest(channel)
    request.content = io.BytesIO()
    request.content.write(b"a=1&b=2")  # as the channel writes the body (Twisted reads its length from tell())
    request.requestHeaders.setRawHeaders(b"content-type", [b"application/x-www-form-urlencoded"])
    request.requestHeaders.setRawHeaders(b"content-length", [b"7"])
    with mock.patch("twisted.web.http._parseContentType") as parse, mock.patch.object(WebRequest, "process"):
        request.requestReceived(b"POST", b"/automation/hooks/x/", b"HTTP/1.1")
    parse.assert_not_called()
    assert request.args == {}
    assert request.content.read() == b"a=1&b=2"  # the body daphne hands to the application, untouched


def _late_loop_receive(host: dict):
    """A consumer's wait for its next message (BZPOPMIN, here blocking 0.5 s) while the event loop is busy
    past the block, as a loaded web process's loop is; then a message arrives."""
    from channels_redis.core import RedisChannelLayer
    from django.conf import settings

    async def scenario():
        layer = RedisChannelLayer(hosts=[{"address": settings.REDIS_URL, **host}], prefix="nexus-test:late-loop")
        layer.brpop_timeout = 0.5
        channel = await layer.new_channel()
        waiting = asyncio.create_task(layer.receive(channel))
        await asyncio.sleep(0.1)  # the BZPOPMIN is on its way
        time.sleep(0.8)  # noqa: ASYNC251 - the loop busy with other work past the block, on purpose
        await layer.send(channel, {"type": "late.message"})
        try:
            return await asyncio.wait_for(waiting, 5)
        finally:
            await layer.flush()

    return asyncio.run(scenario())


def test_a_busy_event_loop_does_not_kill_a_consumer_waiting_for_messages():
    """The channel layer's read timeout outlasts its blocking wait: a reply read late is still a reply
    (redis-py's default, equal to the wait, raised TimeoutError in the consumer: close 1011)."""
    from config.settings import base

    host = {key: value for key, value in base.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0].items() if key != "address"}
    assert host["socket_timeout"] > 5  # channels-redis' own brpop_timeout
    assert _late_loop_receive({**host, "socket_timeout": host["socket_timeout"] / 10})["type"] == "late.message"
    with pytest.raises(redis.exceptions.TimeoutError):  # a read timeout equal to the block, as redis-py's default
        _late_loop_receive({"socket_timeout": 0.5})
