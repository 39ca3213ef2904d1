"""JSON events for programs on the API socket (`/ws/v1/`, marketdata.api_socket; docs/api.md "The socket").

Pages get HTML fragments in the `user.<id>` group; programs get JSON in `api.user.<id>`, a group of the
`events` channel layer (Redis pub/sub: config/settings/base.py says why). Senders call
`api_events_send` after their transaction commits. Each open API socket marks its user present in the
cache (renewed every heartbeat); events of users without a socket are dropped after one `get_many`, so
a fan-out of thousands of fills costs one cache round trip, not a group_send per user.
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


def api_group(user_id: int) -> str:
    return f"api.user.{user_id}"


def api_presence_key(user_id: int) -> str:
    return f"api.socket.{user_id}"


async def api_presence_mark(user_id: int, *, seconds: float) -> None:
    """The user has an API socket open, for `seconds` (the socket renews it while open)."""
    await cache.aset(api_presence_key(user_id), 1, max(int(seconds), 1))


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
        (api_group(user_id), api_frame(channel, payload), channel) for user_id, channel, payload in events
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
