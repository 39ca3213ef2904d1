"""Idempotency-Key on unsafe /api/v1 requests: a retry returns the first answer and creates nothing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connections
from django.utils import timezone

from core.idempotency import IDEMPOTENCY_TTL, idempotency_records_purge
from core.models import IdempotencyRecord
from core.rls import system_context, tenant
from portfolios.selectors import portfolio_list
from tests.api.conftest import token_client
from tests.factories import api_token_for

pytestmark = pytest.mark.django_db

PORTFOLIOS = "/api/v1/portfolios/"


def _count(user, name: str) -> int:
    with tenant(user.pk):
        return sum(p.name == name for p in portfolio_list(user=user))


def _deposits(api, portfolio_id: int) -> int:
    return len(api.get(f"{PORTFOLIOS}{portfolio_id}/transactions/").json()["results"])


DEPOSIT = {"kind": "deposit", "currency": "USD", "quantity": "100", "executed_at": "2026-01-02T03:04:05Z"}


def test_a_retry_with_the_same_key_returns_the_first_answer_and_creates_nothing(user_a):
    api = token_client(api_token_for(user_a))
    portfolio = api.post(PORTFOLIOS, {"name": "Cash", "base_currency": "USD"}, format="json").json()
    url = f"{PORTFOLIOS}{portfolio['id']}/transactions/"
    first = api.post(url, DEPOSIT, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    retry = api.post(url, DEPOSIT, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() and retry["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert _deposits(api, portfolio["id"]) == 1
    # Without a key, or with a new one, each request acts.
    api.post(url, DEPOSIT, format="json")
    api.post(url, DEPOSIT, format="json", HTTP_IDEMPOTENCY_KEY="key-2")
    assert _deposits(api, portfolio["id"]) == 3


def test_the_same_key_with_a_different_body_is_a_422_problem(user_a):
    api = token_client(api_token_for(user_a))
    api.post(PORTFOLIOS, {"name": "A", "base_currency": "USD"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    other = api.post(
        PORTFOLIOS, {"name": "B", "base_currency": "USD"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert other.status_code == 422 and other["Content-Type"] == "application/problem+json"
    assert "different request" in other.json()["detail"]
    assert _count(user_a, "B") == 0


def test_keys_are_per_user(user_a, user_b):
    body = {"name": "Mine", "base_currency": "USD"}
    token_client(api_token_for(user_a)).post(PORTFOLIOS, body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    theirs = token_client(api_token_for(user_b)).post(
        PORTFOLIOS, body, format="json", HTTP_IDEMPOTENCY_KEY="shared"
    )
    assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs
    assert _count(user_a, "Mine") == _count(user_b, "Mine") == 1


def test_a_validation_error_is_replayed_but_a_refusal_that_did_not_act_is_not_kept(user_a):
    api = token_client(api_token_for(user_a))
    bad = api.post(PORTFOLIOS, {"name": 0, "base_currency": "USD"}, format="json", HTTP_IDEMPOTENCY_KEY="v")
    again = api.post(PORTFOLIOS, {"name": 0, "base_currency": "USD"}, format="json", HTTP_IDEMPOTENCY_KEY="v")
    assert bad.status_code == again.status_code == 400 and again["Idempotent-Replayed"] == "true"

    read_only = token_client(api_token_for(user_a, scopes=["read"]))
    body = {"name": "Later", "base_currency": "USD"}
    assert read_only.post(PORTFOLIOS, body, format="json", HTTP_IDEMPOTENCY_KEY="r").status_code == 403
    # The 403 did nothing, so the same key works once the client has the right token.
    assert api.post(PORTFOLIOS, body, format="json", HTTP_IDEMPOTENCY_KEY="r").status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "ünïcode"])
def test_a_malformed_key_is_a_400_problem(user_a, key):
    api = token_client(api_token_for(user_a))
    response = api.post(
        PORTFOLIOS, {"name": "K", "base_currency": "USD"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["errors"]
    assert _count(user_a, "K") == 0


def test_records_expire_after_a_day(user_a):
    api = token_client(api_token_for(user_a))
    portfolio = api.post(PORTFOLIOS, {"name": "Cash", "base_currency": "USD"}, format="json").json()
    url = f"{PORTFOLIOS}{portfolio['id']}/transactions/"
    api.post(url, DEPOSIT, format="json", HTTP_IDEMPOTENCY_KEY="day")
    with time_machine.travel(timezone.now() + IDEMPOTENCY_TTL + timedelta(minutes=1)):
        # An expired record is not replayed, even before the purge ran...
        again = api.post(url, DEPOSIT, format="json", HTTP_IDEMPOTENCY_KEY="day")
        assert again.status_code == 201 and "Idempotent-Replayed" not in again
        api.post(url, DEPOSIT, format="json", HTTP_IDEMPOTENCY_KEY="fresh")
    with time_machine.travel(timezone.now() + IDEMPOTENCY_TTL * 2 + timedelta(minutes=2)):
        # ...and the purge deletes the records older than a day.
        assert idempotency_records_purge() == 2
    with system_context(reason="tests: idempotency records left"):
        assert not IdempotencyRecord.objects.exists()
    assert _deposits(api, portfolio["id"]) == 3


def test_a_concurrent_retry_waits_for_the_first_and_gets_its_answer(user_a):
    """The first request holds its record (inserted, not yet committed) while the retry arrives: the retry
    waits on the unique key, then answers with the first request's stored response."""
    secret = api_token_for(user_a)
    body = {"name": "Raced", "base_currency": "USD"}
    results: dict[str, object] = {}
    started = threading.Event()

    def retry() -> None:
        started.set()
        results["retry"] = token_client(secret).post(
            PORTFOLIOS, body, format="json", HTTP_IDEMPOTENCY_KEY="race"
        )
        connections.close_all()

    first_api = token_client(secret)
    from core import idempotency

    original_settle = idempotency.IdempotencyMiddleware._settle
    thread = threading.Thread(target=retry)

    def settle_then_let_the_retry_in(self, record, response):
        original_settle(self, record, response)
        thread.start()
        started.wait(10)
        # The retry's INSERT now blocks on our uncommitted row; poll until it is waiting on the lock.
        deadline = timezone.now() + timedelta(seconds=10)
        while not _someone_waits_on_a_lock():
            assert timezone.now() < deadline, "the retry never waited on the first request's record"

    idempotency.IdempotencyMiddleware._settle = settle_then_let_the_retry_in
    try:
        first = first_api.post(PORTFOLIOS, body, format="json", HTTP_IDEMPOTENCY_KEY="race")
    finally:
        idempotency.IdempotencyMiddleware._settle = original_settle
    thread.join(20)
    retried = results["retry"]
    assert first.status_code == retried.status_code == 201
    assert retried.json() == first.json() and retried["Idempotent-Replayed"] == "true"
    assert _count(user_a, "Raced") == 1


def _someone_waits_on_a_lock() -> bool:
    """A session of this test database waits for a lock (the retry's INSERT, on the first's transaction)."""
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND a.datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


def test_a_keyed_post_authenticates_its_token_once(user_a):
    """The middleware authenticates a keyed POST before the view (the record is the user's); the view then
    takes that result: the tenant is set once in the request's transaction, and the answer is the user's."""
    from django.test.utils import CaptureQueriesContext

    api = token_client(api_token_for(user_a))
    with CaptureQueriesContext(connections["default"]) as captured:
        created = api.post(PORTFOLIOS, {"name": "Once", "base_currency": "USD"}, format="json",
                           HTTP_IDEMPOTENCY_KEY="once-1")
    assert created.status_code == 201, created.content
    assert [q["sql"] for q in captured.captured_queries if "set_config" in q["sql"]] == [
        f"SELECT set_config('app.user_id', '{user_a.pk}', true)"
    ]
    assert _count(user_a, "Once") == 1
    other = token_client("nexus_" + "0" * 64)
    refused = other.post(PORTFOLIOS, {"name": "Nope", "base_currency": "USD"}, format="json",
                         HTTP_IDEMPOTENCY_KEY="once-2")
    assert refused.status_code == 401
