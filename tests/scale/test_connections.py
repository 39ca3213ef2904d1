"""Connections per request. Daphne runs each request in a thread of its own, so without a pool every page
view opens a connection for each role it uses (the runtime role, plus the auth and system contexts'); with
DB_POOL_SIZE the process borrows them from a pool per role and opens a bounded number in total."""

from __future__ import annotations

import pytest

from tests.factories import UserFactory
from tests.scale.connections import connections_for, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)
REQUESTS = 30
POOL_SIZE = 2


def test_a_pool_per_role_bounds_the_connections_a_web_process_opens():
    cookie = session_cookie(UserFactory())
    direct = connections_for(cookie=cookie, requests=REQUESTS, DB_POOL_SIZE="0")
    pooled = connections_for(cookie=cookie, requests=REQUESTS, DB_POOL_SIZE=str(POOL_SIZE))
    assert direct["statuses"] == pooled["statuses"] == [200]
    assert direct["connections"] >= REQUESTS  # at least one per page view
    # At most the pool's size for each of the three runtime roles, however many requests.
    assert pooled["connections"] <= 3 * POOL_SIZE
