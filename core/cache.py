"""Django's Redis cache with one connection pool per process, not one per request.

`django.core.cache.caches` keeps a cache object per thread and per asyncio context, and Django's
RedisCache gives each object its own redis-py connection pool. Under daphne every HTTP request runs in
a context (and a thread) of its own, so every request built a new pool and opened a new TCP connection
to Redis (with its handshake) for the session read, the rate limit or a worker's doorbell, and left it
for the garbage collector to close. This backend shares the client, and with it the pool, among all the
cache objects of a process that have the same servers and options; redis-py's pool is thread-safe and
resets itself in a forked child (Celery's prefork workers). Django's client also builds a new redis-py
`Redis` object (and its table of some 170 response callbacks) for every cache call; ours keeps one per
pool, as redis-py intends (a `Redis` object is thread-safe). Keys are not checked against memcached's
limits, which Redis does not have.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.utils.functional import cached_property

_clients: dict[tuple, Any] = {}
_lock = threading.Lock()


class SharedRedisCacheClient(RedisCacheClient):
    """One redis-py client per connection pool, made once, instead of one per cache call."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._redis_clients: dict[int, Any] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._redis_clients.get(id(pool))
        if client is None:
            with _lock:
                client = self._redis_clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = SharedRedisCacheClient

    def validate_key(self, key) -> None:
        """Django checks every key of every call against memcached's limits (250 characters, no spaces or
        control characters) and warns; Redis keys have neither limit, and the check (a generator and a
        regular expression per key) showed in a loaded web process' profile."""

    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client
