"""At most N HTTP requests of a web process computing inside Django at once; the rest wait their turn in order.

Django's ASGI handler runs every request in a thread of its own, with no bound: under a burst a daphne
process starts hundreds of threads that fight over the GIL and over the `DB_POOL_SIZE` connections of
each role, and requests fail after the pool's 10 s wait with a 503 although the process could serve them
one after another. Admitting a few requests at a time turns that into a queue on the event loop, first
come first served, where a waiting request costs a few hundred bytes and no thread.

How many at once is a trade-off the limiter makes per request rather than once for the process. A
process's requests share one GIL: when they compute, each one admitted beyond two or three only
stretches every other one's time inside (and the queue behind them). When they wait (a lock held by a
migration, a slow upstream, a streamed download), a small number of turns leaves the process idle
while the queue grows. So `limit` requests count as running; one that is still inside after
`stall_after` seconds stops counting (it is waiting on something, or long anyway) and lets the next one
in, up to `ceiling` inside at once (the pool's size: every admitted request still finds a connection of
each role it uses). WebSockets and lifespan pass straight through (a socket's work is short calls of its
own), and so do the `exempt` paths (the health probes: a busy process must still answer its liveness
probe rather than be restarted for being busy).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Turn:
    __slots__ = ("counted", "timer")

    def __init__(self) -> None:
        self.counted = True  # counts toward `limit` until it stalls
        self.timer: asyncio.TimerHandle | None = None


class _Gate:
    """One event loop's queue: requests running (counted), inside (counted or stalled), waiting."""

    def __init__(self, limit: int, ceiling: int, stall_after: float | None) -> None:
        self.limit, self.ceiling, self.stall_after = limit, ceiling, stall_after
        self.running = 0
        self.inside = 0
        self.waiters: deque[asyncio.Future] = deque()

    def _free(self) -> bool:
        return self.running < self.limit and self.inside < self.ceiling

    def _admit(self) -> _Turn:
        self.running += 1
        self.inside += 1
        turn = _Turn()
        if self.stall_after is not None and self.ceiling > self.limit:
            turn.timer = asyncio.get_running_loop().call_later(self.stall_after, self._stall, turn)
        return turn

    def _wake(self) -> None:
        while self.waiters and self._free():
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(self._admit())

    def _stall(self, turn: _Turn) -> None:
        turn.counted = False
        self.running -= 1
        self._wake()

    async def enter(self) -> _Turn:
        if not self.waiters and self._free():
            return self._admit()
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.leave(waiter.result())  # admitted as it was cancelled: the turn goes to the next
            elif waiter in self.waiters:
                self.waiters.remove(waiter)
            raise

    def leave(self, turn: _Turn) -> None:
        if turn.timer is not None:
            turn.timer.cancel()
        self.inside -= 1
        if turn.counted:
            self.running -= 1
        self._wake()


class HttpConcurrencyLimit:
    """ASGI middleware: `limit` HTTP requests running at once through `app` (0 or less: no limit); one
    inside for longer than `stall_after` seconds stops counting, up to `ceiling` inside at once (default
    and at least: `limit`, so no request stops counting)."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        *,
        ceiling: int | None = None,
        stall_after: float | None = None,
        exempt: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.limit = limit
        self.ceiling = max(limit, ceiling or 0)
        self.stall_after = stall_after
        self.exempt = exempt
        self._gates: dict[asyncio.AbstractEventLoop, _Gate] = {}

    def _gate(self) -> _Gate:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = _Gate(self.limit, self.ceiling, self.stall_after)
        return gate

    # What the gates of the running loops hold now (the tests and a debugger read these).
    @property
    def waiting(self) -> int:
        return sum(len(gate.waiters) for gate in self._gates.values())

    @property
    def active(self) -> int:
        return sum(gate.inside for gate in self._gates.values())

    @property
    def running(self) -> int:
        return sum(gate.running for gate in self._gates.values())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        gate = self._gate()
        turn = await gate.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            gate.leave(turn)
