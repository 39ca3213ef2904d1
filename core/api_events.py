"""JSON events for programs on the API socket (`/ws/v1/`, marketdata.api_socket; docs/api.md "The socket").

Pages get HTML fragments in the `user.<id>` group; programs get JSON in `api.user.<id>.<channel>`, a group
of the `events` channel layer (Redis pub/sub: config/settings/base.py says why). Senders call
`api_events_send` after their transaction commits. Each web process marks the users it holds an API
socket of present in the cache (core.presence); events of users without a socket are dropped after one
`get_many`, so a fan-out of thousands of fills costs one cache round trip, not a group_send per user.
"""

from __future__ import annotations

import json
import threading

import redis
import structlog
from channels.layers import get_channel_layer
from channels_redis.utils import _consistent_hash, decode_hosts
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from core.presence import SocketPresence

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


api_presence = SocketPresence("api.socket")


def api_presence_key(user_id: int) -> str:
    return api_presence.key(user_id)


async def api_presence_enter(user_id: int, *, every: float, seconds: float) -> None:
    """An API socket of the user opened in this process (core.presence)."""
    await api_presence.enter(user_id, every=every, seconds=seconds)


def api_presence_leave(user_id: int) -> None:
    api_presence.leave(user_id)


def api_users_present(user_ids: set[int]) -> set[int]:
    return api_presence.among(user_ids)


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
        (api_group(user_id, channel), {"type": MESSAGE_TYPE, "channel": channel, "frame": api_frame(channel, payload)})
        for user_id, channel, payload in events
    ]
    try:
        _publish(messages)
    except Exception:
        logger.exception("core.api_events_send_failed", events=len(messages))


_redis_clients: dict[str, redis.Redis] = {}
_redis_lock = threading.Lock()


def _redis(host: dict) -> redis.Redis:
    """One redis-py client (and connection pool) per process and host of the events layer."""
    name = repr(sorted(host.items()))
    client = _redis_clients.get(name)
    if client is None:
        with _redis_lock:
            client = _redis_clients.get(name)
            if client is None:
                options = dict(host)
                address = options.pop("address", None)
                client = redis.Redis.from_url(address, **options) if address else redis.Redis(**options)
                _redis_clients[name] = client
    return client


def _publish(messages: list[tuple[str, dict]]) -> None:
    """(group, message) pairs published as the events layer's `group_send` publishes them (channels-redis'
    pub/sub layer: its group's Redis channel, its shard, its serializer), from this thread, in one
    pipelined round trip per shard. Through the layer itself a sync caller crossed to an event loop for
    each call (`async_to_sync`: under daphne the server's loop, busy with every socket of the process;
    elsewhere a new loop, thread and Redis connection each time)."""
    layer = get_channel_layer(settings.API_EVENTS_LAYER)
    config = settings.CHANNEL_LAYERS[settings.API_EVENTS_LAYER].get("CONFIG", {})
    prefix, hosts = config.get("prefix", "asgi"), decode_hosts(config.get("hosts"))
    shards: dict[int, list[tuple[str, bytes]]] = {}
    for group, message in messages:
        channel = f"{prefix}__group__{group}"
        shards.setdefault(_consistent_hash(channel, len(hosts)), []).append((channel, layer.serialize(message)))
    for shard, items in shards.items():
        pipe = _redis(hosts[shard]).pipeline(transaction=False)
        for channel, data in items:
            pipe.publish(channel, data)
        pipe.execute()
