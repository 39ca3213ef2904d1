"""The email provider's send rate, shared by every send worker: a token bucket in Redis.

`rate` tokens a second refill a bucket of `burst` tokens; sending n emails takes n tokens. One Lua script
refills and takes atomically, so two workers on one provider never exceed the rate together. `take`
returns how long to wait before the tokens are there (0: take them now); the caller sleeps and asks again.
The clock is passed in (the worker's `time.time()`), so tests drive it without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from django.conf import settings

# KEYS[1] the bucket; ARGV: rate, burst, n, now. Returns the seconds to wait, as a string (0: taken).
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
local wait = 0
-- Clock times are floats: a token a microsecond short of whole counts as whole.
if tokens + 0.000001 >= n then
  tokens = math.max(0, tokens - n)
else
  wait = (n - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)


class TokenBucket:
    def __init__(self, *, name: str, rate: float, burst: int, client: redis.Redis | None = None) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("the send rate must be positive and the burst at least 1")
        self.key = f"{settings.REDIS_KEY_PREFIX}:newsletter:bucket:{name}"
        self.rate = float(rate)
        self.burst = int(burst)
        self._client = client or _client()
        self._take = self._client.register_script(_TAKE)

    def take(self, n: int, *, now: float) -> float:
        """Take `n` tokens if they are there (returns 0.0), else take none and return the seconds to wait."""
        if n > self.burst:
            raise ValueError(f"cannot take {n} tokens at once from a bucket of {self.burst}")
        return float(self._take(keys=[self.key], args=[self.rate, self.burst, n, now]))

    def wait_for(
        self, n: int, *, clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[float], None] | None = None,
    ) -> float:
        """Block until `n` tokens are taken; returns the seconds waited in all."""
        waited = 0.0
        while True:
            wait = self.take(n, now=clock())
            if wait <= 0:
                return waited
            if on_wait is not None:
                on_wait(wait)
            sleep(wait)
            waited += wait


def provider_bucket() -> TokenBucket:
    """The bucket of the configured email provider (NEWSLETTER_SEND_RATE emails a second)."""
    return TokenBucket(
        name=settings.EMAIL_BACKEND.rsplit(".", 2)[-2],
        rate=settings.NEWSLETTER_SEND_RATE,
        burst=settings.NEWSLETTER_SEND_BURST,
    )
