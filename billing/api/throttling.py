"""DRF pieces: the per-plan rate limit, with RateLimit-* headers on every answer it counts (docs/api.md)."""

from __future__ import annotations

import uuid

from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

from billing.choices import Feature, PlanCode
from billing.plans import plan_get
from billing.selectors import user_rate_plan
from core.api import rate_limit_note

# The sliding window of DRF's SimpleRateThrottle (a request counts for `window` seconds after it was
# allowed; a refused one does not count), kept in Redis as a sorted set of the allowed requests' times and
# checked and recorded in one round trip. DRF's own keeps the window as a pickled list in the cache: a GET
# and a SET of the whole list on every request, up to 600 timestamps on Pro.
_WINDOW = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  count = count + 1
  allowed = 1
end
redis.call('EXPIRE', key, math.ceil(window))
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {allowed, count, oldest[2] or false}
"""
_scripts: dict[int, object] = {}


def _window_script(client):
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts.setdefault(id(client), client.register_script(_WINDOW))
    return script


class PlanRateThrottle(SimpleRateThrottle):
    """API requests per minute from the caller's plan (anonymous callers get Free's, per IP address)."""

    scope = "plan"
    # Not DRF's "throttle_%(scope)s_%(ident)s": that key holds DRF's pickled list, not a sorted set.
    cache_format = "throttle-window_%(scope)s_%(ident)s"

    def __init__(self) -> None:
        # The rate depends on who is calling, so it is found per request in allow_request().
        self.count = 0
        self.oldest: float | None = None

    def get_cache_key(self, request, view) -> str:
        if request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view) -> bool:
        user = request.user
        plan = user_rate_plan(user=user) if user and user.is_authenticated else plan_get(PlanCode.FREE)
        limit = plan.limit(Feature.API_REQUESTS_PER_MINUTE)
        if limit is None:
            return True
        self.num_requests, self.duration = limit, 60
        key = cache.make_and_validate_key(self.get_cache_key(request, view))
        client = cache._cache.get_client(key, write=True)
        self.now = self.timer()
        allowed, self.count, oldest = _window_script(client)(
            keys=[key], args=[repr(self.now), self.duration, limit, f"{self.now!r}:{uuid.uuid4().hex[:8]}"],
            client=client,
        )
        self.oldest = float(oldest) if oldest else None
        # Seconds until the oldest request in the window leaves it (the window then has room again).
        reset = self.duration - (self.now - self.oldest) if self.oldest is not None else 0
        rate_limit_note(request, limit=limit, remaining=self.num_requests - self.count, reset=reset)
        return bool(allowed)

    def wait(self) -> float | None:
        """Retry-After of a refused request, as DRF's: the time until the window has room for it."""
        remaining = self.duration - (self.now - self.oldest) if self.oldest is not None else self.duration
        available = self.num_requests - self.count + 1
        if available <= 0:
            return None
        return remaining / available
