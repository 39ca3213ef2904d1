"""Which users have a socket open somewhere: marks in the cache, kept by the web processes holding them.

Live pushes (a toast, the open-orders table, a program's `fill` event) are only worth rendering and
sending to a user who has a socket to receive them. Each web process counts the sockets it holds per
user; a user's mark is written when their first socket in the process opens, then one task renews the
marks of every user the process holds in one `set_many` per interval, however many sockets there are.
The mark outlives a missed renewal and expires by itself once no process renews it (the last socket
closed, or the process died), so a sender that finds none drops the push after one `get_many` for all
its users. A user whose socket opens just as a push is dropped sees the current state on the page (or,
for a program, in the REST API) anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog
from django.core.cache import cache

logger = structlog.get_logger(__name__)


class SocketPresence:
    """The users with a socket of one kind open (`prefix` names the kind in the cache keys)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.sockets: dict[int, int] = {}  # user id -> sockets this process holds
        self.renewer: asyncio.Task | None = None

    def key(self, user_id: int) -> str:
        return f"{self.prefix}.{user_id}"

    async def enter(self, user_id: int, *, every: float, seconds: float) -> None:
        """A socket of the user opened in this process: the user is present for `seconds`, renewed every
        `every` seconds while any of the user's sockets in this process stays open."""
        first = user_id not in self.sockets
        self.sockets[user_id] = self.sockets.get(user_id, 0) + 1
        if first:
            await cache.aset(self.key(user_id), 1, max(int(seconds), 1))
        loop = asyncio.get_running_loop()
        if self.renewer is None or self.renewer.done() or self.renewer.get_loop() is not loop:
            self.renewer = loop.create_task(self._renew(every, seconds))

    def leave(self, user_id: int) -> None:
        """A socket closed; the user's mark expires by itself once the last one has."""
        left = self.sockets.get(user_id, 0) - 1
        if left > 0:
            self.sockets[user_id] = left
        else:
            self.sockets.pop(user_id, None)

    async def _renew(self, every: float, seconds: float) -> None:
        while self.sockets:
            await asyncio.sleep(every)
            users = list(self.sockets)
            try:
                await cache.aset_many({self.key(u): 1 for u in users}, max(int(seconds), 1))
            except Exception:  # Redis away: the next round tries again; pushes wait for it anyway
                logger.exception("core.presence_renew_failed", prefix=self.prefix, users=len(users))

    def among(self, user_ids: Iterable[int]) -> set[int]:
        """The users among `user_ids` with a socket open (one cache round trip)."""
        ids = set(user_ids)
        if not ids:
            return set()
        present = cache.get_many([self.key(user_id) for user_id in ids])
        return {user_id for user_id in ids if self.key(user_id) in present}
