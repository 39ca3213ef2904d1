"""One feed publishes at a time: a Redis lease with a fencing token (docs/scale-out.md, "The market feed").

Any number of `run_marketfeed` processes may run; each waits as a standby until it takes the lease:

- `FeedLease.try_acquire()`: SET the lease key NX with a TTL; on success INCR the fence counter, so every
  term of leadership has a token greater than any before it, and the lease holds "<token>:<holder>".
- `FeedLease.renew()`: the leader extends the TTL every `ttl / 3` while the key still holds its value. A
  leader that cannot (it stalled past the TTL and another process took over) is deposed and stops.
- Fenced writes: every publish is claimed first (`claim`: one Lua script checks that the lease still holds
  this token and records what is being published), and the tick stream is appended by a script that
  checks the token too. A deposed leader's late publish is refused (`FeedDeposed`) before it reaches a
  browser, the database's live tables or the tick stream.
- The marks (`<prefix>:marketdata:feed:marks`) are where the next leader resumes: the last tick published
  per symbol and the last closed minute announced. The new leader's sources start as after any
  restart (replay and simulated write the candles back to the backfill horizon and replay the current
  minute; ccxt fetches the missed candles over REST), and the Publisher skips what the marks say was
  already published: the gap is filled once, and closed minutes in the gap are announced in order.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
import structlog
from django.conf import settings

logger = structlog.get_logger(__name__)

_ACQUIRE = """
if redis.call('SET', KEYS[1], 'acquiring', 'NX', 'PX', ARGV[2]) then
  local token = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
  return token
end
return false
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# KEYS: lease, marks. ARGV: lease value, then field/value pairs.
_CLAIM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if #ARGV > 1 then
  redis.call('HSET', KEYS[2], unpack(ARGV, 2))
end
return 1
"""
# KEYS: lease, stream. ARGV: lease value, maxlen, then one payload per entry.
_APPEND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
for i = 3, #ARGV do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'ticks', ARGV[i])
end
return 1
"""


class FeedDeposed(Exception):  # noqa: N818 - a state, not a failure of the code
    """The lease is no longer this process's: another feed leads now, this one must not publish."""


@dataclass(frozen=True)
class Resume:
    """Where the previous leader stopped, for one symbol."""

    tick_at: datetime | None = None
    closed_at: datetime | None = None


# Marks older than this are a previous run's, not a failover's: a feed that starts after a longer outage
# starts as before leader election (it does not announce a long gap's minutes one by one). Marks in the
# future come from a replay faster than the clock (--speed): a run at another speed cannot resume from them.
RESUME_WINDOW = timedelta(minutes=15)
FUTURE_SLACK = timedelta(minutes=1)


def usable_resume_points(points: dict[str, Resume], *, now: datetime) -> dict[str, Resume]:
    usable = {}
    for symbol, point in points.items():
        latest = max((at for at in (point.tick_at, point.closed_at) if at is not None), default=None)
        if latest is None or latest > now + FUTURE_SLACK or latest < now - RESUME_WINDOW:
            logger.info("marketdata.resume_ignored", symbol=symbol, mark=latest.isoformat() if latest else None)
            continue
        usable[symbol] = point
    return usable


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def default_holder() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class FeedLease:
    def __init__(self, client: redis.Redis, *, ttl: float, holder: str | None = None, prefix: str | None = None) -> None:
        self.client = client
        self.ttl_ms = max(100, int(ttl * 1000))
        self.holder = holder or default_holder()
        base = f"{prefix or settings.REDIS_KEY_PREFIX}:marketdata:feed"
        self.lease_key = f"{base}:leader"
        self.fence_key = f"{base}:fence"
        self.marks_key = f"{base}:marks"
        self.token: int | None = None
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._claim = client.register_script(_CLAIM)
        self._append = client.register_script(_APPEND)

    @property
    def ttl(self) -> float:
        return self.ttl_ms / 1000

    @property
    def value(self) -> str:
        return f"{self.token}:{self.holder}"

    # --- the lease ------------------------------------------------------------------------------------
    def try_acquire(self) -> int | None:
        token = self._acquire(keys=[self.lease_key, self.fence_key], args=[self.holder, self.ttl_ms])
        if token is None:
            return None
        self.token = int(token)
        return self.token

    def renew(self) -> bool:
        if self.token is None:
            return False
        return bool(self._renew(keys=[self.lease_key], args=[self.value, self.ttl_ms]))

    def release(self) -> None:
        if self.token is not None:
            self._release(keys=[self.lease_key], args=[self.value])

    def current_holder(self) -> str | None:
        value = self.client.get(self.lease_key)
        return _text(value) if value else None

    # --- fenced writes --------------------------------------------------------------------------------
    def claim(self, *, ticks: dict[str, datetime] | None = None, closed: dict[str, datetime] | None = None) -> None:
        """Check the token and record the marks in one step; FeedDeposed when the lease is another's."""
        fields: list[str] = []
        for symbol, at in (ticks or {}).items():
            fields += [f"tick:{symbol}", at.isoformat()]
        for symbol, at in (closed or {}).items():
            fields += [f"closed:{symbol}", at.isoformat()]
        if not self._claim(keys=[self.lease_key, self.marks_key], args=[self.value, *fields]):
            raise FeedDeposed(f"fence token {self.token} is no longer the lease's")

    def stream_append(self, stream_key: str, payloads: list[str], *, maxlen: int) -> None:
        if not self._append(keys=[self.lease_key, stream_key], args=[self.value, maxlen, *payloads]):
            raise FeedDeposed(f"fence token {self.token} is no longer the lease's")

    def resume_points(self) -> dict[str, Resume]:
        raw = {_text(k): _text(v) for k, v in self.client.hgetall(self.marks_key).items()}
        points: dict[str, dict[str, datetime]] = {}
        for field, value in raw.items():
            kind, _, symbol = field.partition(":")
            points.setdefault(symbol, {})[kind] = datetime.fromisoformat(value)
        return {
            symbol: Resume(tick_at=marks.get("tick"), closed_at=marks.get("closed")) for symbol, marks in points.items()
        }

    # --- the loops --------------------------------------------------------------------------------------
    async def wait_until_leader(self, *, poll: float | None = None) -> int:
        """Block as a standby until this process holds the lease; returns the fencing token."""
        poll = poll if poll is not None else max(0.1, self.ttl / 5)
        announced = False
        while True:
            try:
                token = await asyncio.to_thread(self.try_acquire)
            except redis.RedisError as exc:
                logger.warning("marketdata.lease_unavailable", error=str(exc))
                token = None
            if token is not None:
                logger.info("marketdata.feed_leader", holder=self.holder, token=token)
                return token
            if not announced:
                logger.info("marketdata.feed_standby", holder=self.holder, leader=await asyncio.to_thread(self.current_holder))
                announced = True
            await asyncio.sleep(poll)

    async def keep(self) -> None:
        """Renew every ttl/3; return when the lease is lost (or could not be renewed for a whole TTL)."""
        loop = asyncio.get_running_loop()
        valid_until = loop.time() + self.ttl
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                renewed = await asyncio.to_thread(self.renew)
            except redis.RedisError as exc:
                logger.warning("marketdata.lease_renew_failed", error=str(exc))
                if loop.time() >= valid_until:
                    return
                continue
            if not renewed:
                return
            valid_until = loop.time() + self.ttl
