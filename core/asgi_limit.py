"""At most N HTTP requests of a web process inside Django at once; the rest wait their turn in order.

Django's ASGI handler runs every request in a thread of its own (a ThreadSensitiveContext each), with no
bound: under a burst a daphne process starts hundreds of threads that fight over the GIL and over the
`DB_POOL_SIZE` connections of each role, and requests fail after the pool's 10 s wait with a 503 although
the process could serve them one after another. Admitting at most `limit` requests (by default the
pool's size: every admitted request finds a connection of each role it uses) turns that into a queue
on the event loop, first come first served, where a waiting request costs a few hundred bytes and no
thread. WebSockets and lifespan pass straight through (a socket's work is short calls of its own), and
so do the `exempt` paths (the health probes: a busy process must still answer its liveness probe rather
than be restarted for being busy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class HttpConcurrencyLimit:
    """ASGI middleware: `limit` HTTP requests at once through `app` (0 or less: no limit)."""

    def __init__(self, app: ASGIApp, limit: int, *, exempt: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt
        self._semaphores: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}
        self.waiting = 0  # requests queued for a turn now
        self.active = 0

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.limit)
        return semaphore

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        semaphore = self._semaphore()
        self.waiting += 1
        try:
            await semaphore.acquire()
        finally:
            self.waiting -= 1
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            semaphore.release()
