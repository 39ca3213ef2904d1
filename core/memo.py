"""Results a web process keeps while the data under them has not changed: shared, read often, written by
one writer (the market feed's candles, read by every chart and program alike).

Writers bump a counter per scope (one instrument, say) in the cache after their transaction commits;
a reader reads the scope's counter (one cache round trip) and reuses what this process computed at that
counter, or computes and keeps it. A reader that sees the bumped counter reads after the commit, so
nothing older than the counter is ever kept under it. A counter that is gone (the cache was flushed) starts
again from the clock in nanoseconds, never from a value a process may still hold results under. Each process keeps at most `size` results, the least
recently used dropped first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from django.core.cache import cache
from django.db import transaction


class VersionedMemo:
    def __init__(self, name: str, *, size: int = 256) -> None:
        self.name = name
        self.size = size
        self._kept: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def _counter(self, scope: Hashable) -> str:
        return f"memo:{self.name}:{scope}"

    def bump(self, scopes: Iterable[Hashable]) -> None:
        """The data of `scopes` changed: once the current transaction commits (at once outside one), every
        process computes their results again."""
        keys = [self._counter(scope) for scope in set(scopes)]
        if keys:
            transaction.on_commit(lambda: self._bump(keys))

    def _bump(self, keys: list[str]) -> None:
        for key in keys:
            try:
                cache.incr(key)
            except ValueError:  # no counter (yet, or flushed): a new one differs from every value kept
                if not cache.add(key, time.time_ns(), None):
                    cache.incr(key)

    def get(self, scope: Hashable, key: Hashable, compute: Callable[[], Any]) -> Any:
        """`compute()`'s result for (`scope`, `key`), reused while the scope's data is unchanged."""
        version = cache.get(self._counter(scope))
        if version is None:
            # No counter (none bumped yet, or the cache lost it): start one, so that the next reader can
            # keep its result; this one computes.
            cache.add(self._counter(scope), time.time_ns(), None)
            return compute()
        entry = (scope, key, version)
        with self._lock:
            if entry in self._kept:
                self._kept.move_to_end(entry)
                return self._kept[entry]
        result = compute()
        with self._lock:
            self._kept[entry] = result
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return result
