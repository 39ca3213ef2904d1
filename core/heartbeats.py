"""Heartbeats of long-running processes, in Redis: the process writes its key every few seconds with a TTL,
and /readyz reports whether the last beat is recent. Core knows only the key names; the processes that beat
(the Discord bot) import this module, never the other way round."""

from __future__ import annotations

import time

import redis
from django.conf import settings

DISCORD_BOT = "discord-bot"
# The bot beats every 15 seconds; a beat older than this means it is not running (or stuck).
STALE_AFTER_SECONDS = 45
KEY_TTL_SECONDS = 120


def heartbeat_key(name: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:heartbeat:{name}"


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)


def heartbeat_beat(name: str, *, now: float | None = None, client: redis.Redis | None = None) -> None:
    """Record that `name` is alive now."""
    (client or _client()).set(
        heartbeat_key(name), f"{time.time() if now is None else now:.3f}", ex=KEY_TTL_SECONDS
    )


def heartbeat_age(name: str, *, now: float | None = None, client: redis.Redis | None = None) -> float | None:
    """Seconds since `name` last beat, or None when it has not beaten within the key's TTL."""
    value = (client or _client()).get(heartbeat_key(name))
    if value is None:
        return None
    return max(0.0, (time.time() if now is None else now) - float(value))


def discord_bot_status(*, now: float | None = None) -> str:
    """ "off" without DISCORD_BOT_TOKEN (the bot is not meant to run), else "ok" or "stale"."""
    if not settings.DISCORD_BOT_TOKEN:
        return "off"
    try:
        age = heartbeat_age(DISCORD_BOT, now=now)
    except redis.RedisError:
        return "stale"
    return "ok" if age is not None and age <= STALE_AFTER_SECONDS else "stale"
