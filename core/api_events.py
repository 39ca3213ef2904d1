"""JSON events for programs on the API socket (`/ws/v1/`, marketdata.api_socket; docs/api.md "The socket").

Pages get HTML fragments in the `user.<id>` group; programs get JSON in `api.user.<id>.<channel>`, a group
of the `events` channel layer (Redis pub/sub: config/settings/base.py says why). Senders call
`api_events_send` after their transaction commits. Each web process marks the users it holds an API
socket of present in the cache (renewed every heartbeat interval, one write for all of them); events of
users without a socket are dropped after one `get_many`, so a fan-out of thousands of fills costs one
cache round trip, not a group_send per user.
"""

from __future__ import annotations

import asyncio
import json
import threading

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder

logger = structlog.get_logger(__name__)

MESSAGE_TYPE = "api.event"
# What a client may subscribe to that is about the token's user.
USER_CHANNELS = ("orders", "fills", "positions", "alerts", "notifications")
# The message type for each channel.
EVENT_TYPES = {
    "orders": "order",
    "fills": "fill",
    "positions": "position",
    "alerts": "alert",
    "notifications": "notification",
}


def api_group(user_id: int, channel: str) -> str:
    """The group of one user channel of one user: a socket joins the groups of the channels it subscribed
    to, so an event reaches only the sockets (and the web processes) that asked for it."""
    return f"api.user.{user_id}.{channel}"


def api_presence_key(user_id: int) -> str:
    return f"api.socket.{user_id}"


class _Presence:
    """The users with an API socket open in this process, and the task that renews their marks.

    A socket marks its user when it opens if no other socket of this process has; then one task renews
    every present user's mark in one `set_many` per interval, whatever the number of sockets (2,000
    sockets used to write 100 marks a second, each a thread hop from the event loop)."""

    def __init__(self) -> None:
        self.sockets: dict[int, int] = {}
        self.renewer: asyncio.Task | None = None

    async def enter(self, user_id: int, *, every: float, seconds: float) -> None:
        first = user_id not in self.sockets
        self.sockets[user_id] = self.sockets.get(user_id, 0) + 1
        if first:
            await cache.aset(api_presence_key(user_id), 1, max(int(seconds), 1))
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
                await cache.aset_many({api_presence_key(u): 1 for u in users}, max(int(seconds), 1))
            except Exception:  # Redis away: the next round tries again; events wait for it anyway
                logger.exception("core.api_presence_renew_failed", users=len(users))


_presence = _Presence()


async def api_presence_enter(user_id: int, *, every: float, seconds: float) -> None:
    """An API socket of the user opened in this process: the user is present (for `seconds`, renewed
    every `every` seconds while any of the user's sockets in this process stays open)."""
    await _presence.enter(user_id, every=every, seconds=seconds)


def api_presence_leave(user_id: int) -> None:
    _presence.leave(user_id)


def api_users_present(user_ids: set[int]) -> set[int]:
    present = cache.get_many([api_presence_key(user_id) for user_id in user_ids])
    return {user_id for user_id in user_ids if api_presence_key(user_id) in present}


def api_frame(channel: str, payload: dict) -> str:
    """The JSON text a client receives: {"type": "fill", "channel": "fills", ...payload}."""
    return json.dumps(
        {"type": EVENT_TYPES[channel], "channel": channel, **payload},
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
    )


def api_events_send(events: list[tuple[int, str, dict]]) -> None:
    """Send (user id, channel, payload) events to the users' API sockets. Never raises: the change that
    caused an event is already committed, and a program that misses one can read the REST API."""
    if not events:
        return
    try:
        present = api_users_present({user_id for user_id, _, _ in events})
    except Exception:
        logger.exception("core.api_events_presence_failed")
        return
    events = [event for event in events if event[0] in present]
    if not events:
        return
    messages = [
        (api_group(user_id, channel), api_frame(channel, payload), channel) for user_id, channel, payload in events
    ]

    async def send() -> None:
        layer = get_channel_layer(settings.API_EVENTS_LAYER)  # Redis pub/sub (config/settings/base.py)
        for group, frame, channel in messages:
            await layer.group_send(group, {"type": MESSAGE_TYPE, "channel": channel, "frame": frame})

    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            async_to_sync(send)()
            return
        # Called from a thread running an event loop: async_to_sync refuses to block it.
        sender = threading.Thread(target=asyncio.run, args=(send(),), name="api-events")
        sender.start()
        sender.join()
    except Exception:
        logger.exception("core.api_events_send_failed", events=len(messages))
